"""The Data Push service: ``backend`` (jobs, chunks and their rules), ``routes`` (HTTP), ``engine`` (applying jobs)."""
