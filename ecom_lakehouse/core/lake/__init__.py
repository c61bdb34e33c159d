"""Where things are: the bucket's layout (every key), the store (a folder or S3),
an upload's identity, landing days, and memory given back between files."""
