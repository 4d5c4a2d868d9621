"""transfers of the Celonis provider."""
