"""A local Celonis emulator: a real HTTP server that behaves like Celonis, for development and tests."""
