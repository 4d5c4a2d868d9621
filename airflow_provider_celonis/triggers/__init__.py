"""triggers of the Celonis provider."""
