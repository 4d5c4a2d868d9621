"""hooks of the Celonis provider."""
