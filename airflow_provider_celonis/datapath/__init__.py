"""The data path shared by every push operator: sources, schema planning, chunk writing, upload."""
