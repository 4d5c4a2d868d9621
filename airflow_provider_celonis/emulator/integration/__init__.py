"""The Integration API service: a pool's data jobs (SQL transformations), data model loads and pool tables."""
