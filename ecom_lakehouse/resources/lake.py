"""The lake as a Dagster resource."""

import dagster as dg

from ecom_lakehouse.core.storage import Lake, normalize_uri


class LakeResource(dg.ConfigurableResource):
    """The bucket (or local folder) every zone lives in."""

    uri: str
    endpoint_url: str | None = None
    region: str | None = None

    def lake(self) -> Lake:
        return Lake(normalize_uri(self.uri), self.endpoint_url, self.region)
