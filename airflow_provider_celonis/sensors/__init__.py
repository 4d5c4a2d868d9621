"""sensors of the Celonis provider."""
