"""A local Celonis emulator: the Data Push and the Standard Data Ingestion services (never imported by the provider)."""
