"""The data path shared by every push operator: sources -> batches -> chunk files -> one job.

``sources`` opens files, frames, tables, streams as a ``batches.BatchSource`` (``files`` finds the files,
``text_read`` holds the CSV/JSON reading rules, ``csv_errors`` locates a bad value); ``schema``, ``names``
and ``drift`` plan and check the columns; ``chunks`` (parquet, any path) and ``csv_split`` (CSV as it is:
``csv_scan`` finds record boundaries, ``csv_chunk`` reads a chunk, ``csv_header`` checks headers) make
the chunk files; ``pipeline`` checks a push's parts before any job exists; ``upload`` sends chunks
while the next is written; ``job.PushJob`` is the job's lifecycle (create, upload, execute, wait, resume,
abandon, summary).
"""
