"""``BatchSource``: what every source becomes, a stream of Arrow record batches with its schema known up front.

Its own module because the readers (``sources``), type drift (``drift``) and CSV error location
(``csv_errors``) all hand sources around: each imports it from here, none from another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa


@dataclass
class BatchSource:
    """A stream of record batches with its schema known up front."""

    schema: pa.Schema
    _batches: Callable[[], Iterator[pa.RecordBatch]]
    description: str
    paths: list[str] = field(default_factory=list)
    #: ``batches()`` may be called again and yields the same rows (files, tables): see ``drift``.
    rereadable: bool = False
    #: The first rows as the source's first look decoded them (a CSV's first block, in the types the look
    #: inferred): a head start for measuring STRING lengths (``SchemaPlan.foresee``), never pushed.
    first_rows: pa.RecordBatch | None = None

    def batches(self) -> Iterator[pa.RecordBatch]:
        return self._batches()
