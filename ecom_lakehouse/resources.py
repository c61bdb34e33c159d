"""Resources, chosen per environment in this one place, from environment variables.

``LAKEHOUSE_URI`` picks the lake (a local folder by default, or ``s3://bucket``);
``AWS_ENDPOINT_URL`` and ``AWS_REGION`` point every AWS client at an endpoint and region.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from ecom_lakehouse.storage import Lake, normalize_uri


class LakeResource(dg.ConfigurableResource):
    """The bucket (or local folder) every zone lives in."""

    uri: str
    endpoint_url: str | None = None
    region: str | None = None

    def lake(self) -> Lake:
        return Lake(normalize_uri(self.uri), self.endpoint_url, self.region)


def build_resources(environ: Mapping[str, str] = os.environ) -> dict[str, object]:
    lake = Lake.from_env(environ)
    return {
        "lake": LakeResource(uri=lake.uri, endpoint_url=lake.endpoint_url, region=lake.region),
    }
