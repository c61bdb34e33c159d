"""AWS clients, all pointed at the same endpoint and region (a moto server in the tests)."""

from typing import Any


def aws_client(service: str, endpoint_url: str | None, region: str | None) -> Any:
    """A boto3 client that retries throttling and transient errors (botocore's standard mode:
    exponential backoff with jitter, 10 attempts)."""
    import boto3  # only the aws profile needs it: ~10 MB and 0.2 s kept out of local runs
    from botocore.config import Config

    retries = Config(retries={"mode": "standard", "max_attempts": 10})
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region, config=retries)
