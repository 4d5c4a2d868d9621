"""The Standard Data Ingestion (S3) service: ``backend`` (objects, tables, rules), ``routes`` (S3 over HTTP)."""
