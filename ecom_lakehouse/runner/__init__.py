"""What the CLI runs in this process, through the real Dagster definitions: ingest,
re-processing, maintenance, checks and status, and the records each prints."""
