"""AWS clients, all pointed at the same endpoint and region (a moto server in the tests)."""

from typing import Any

import boto3


def aws_client(service: str, endpoint_url: str | None, region: str | None) -> Any:
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region)
