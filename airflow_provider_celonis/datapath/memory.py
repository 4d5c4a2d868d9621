"""The Arrow memory pool the data path reads, decodes and writes with (``data_pool``).

A push streams hundreds of MB through buffers that live for milliseconds: 4 MiB blocks read from the file,
the batches decoded from them, the parquet pages encoded from those. pyarrow's default allocator (mimalloc)
gives freed memory back to the kernel almost at once and asks for huge pages, so the next buffers are fresh
pages that the kernel must find and zero, 2 MiB at a time. On the benchmark's VM that was a third or more
of a 210 MB conversion's time (1.1-1.6 s of kernel time against 0.2 s, docs/performance.md). jemalloc,
which pyarrow ships on Linux, keeps freed pages for the next buffers. Only the data path's own buffers use
it: the process' default pool stays as it was, for everything else.

A deployment that sets ``ARROW_DEFAULT_MEMORY_POOL`` has chosen its allocator; the data path then uses the
default pool like everything else.
"""

from __future__ import annotations

import functools
import os

import pyarrow as pa


@functools.cache
def data_pool() -> pa.MemoryPool:
    """jemalloc where pyarrow has it and the deployment chose no allocator; else the default pool."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return pa.default_memory_pool()
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # pyarrow built without jemalloc (Windows, some macOS builds)
        return pa.default_memory_pool()
