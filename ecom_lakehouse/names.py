"""The name of each dataset's ingest job, and back: one rule for the assets, the sensor, the
CLI and the notifications."""

INGEST_SUFFIX = "_ingest"


def ingest_job_name(dataset: str) -> str:
    return f"{dataset}{INGEST_SUFFIX}"


def dataset_of_ingest_job(job_name: str) -> str:
    return job_name.removesuffix(INGEST_SUFFIX)
