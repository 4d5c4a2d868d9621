"""operators of the Celonis provider."""
