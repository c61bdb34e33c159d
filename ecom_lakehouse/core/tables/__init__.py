"""The Delta tables: the merge (exactly once, newest wins), where keys live, schema
evolution, maintenance, the load history and what a load reports."""
