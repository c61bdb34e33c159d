"""The lake as a Dagster resource."""

from __future__ import annotations

import dagster as dg

from ecom_lakehouse.core.lake.storage import Lake, S3Credentials, normalize_uri


class LakeResource(dg.ConfigurableResource):
    """The bucket (or local folder) every zone lives in. Static credentials, when the
    environment has them, come from ``dg.EnvVar``: resolved in the run, never shown in the UI."""

    uri: str
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    @classmethod
    def of(cls, lake: Lake, *, from_process_env: bool) -> LakeResource:
        """The resource for ``lake``; its credentials as ``dg.EnvVar`` when they come from this
        process's environment, as values when they were given (tests)."""
        credentials: dict[str, str | dg.EnvVar | None] = {}
        if lake.credentials and from_process_env:
            credentials = {
                "access_key_id": dg.EnvVar("AWS_ACCESS_KEY_ID"),
                "secret_access_key": dg.EnvVar("AWS_SECRET_ACCESS_KEY"),
            }
            if lake.credentials.session_token:
                credentials["session_token"] = dg.EnvVar("AWS_SESSION_TOKEN")
        elif lake.credentials:
            credentials = {
                "access_key_id": lake.credentials.key_id,
                "secret_access_key": lake.credentials.secret,
                "session_token": lake.credentials.session_token,
            }
        return cls(uri=lake.uri, endpoint_url=lake.endpoint_url, region=lake.region, **credentials)

    def lake(self) -> Lake:
        credentials = (
            S3Credentials(self.access_key_id, self.secret_access_key or "", self.session_token)
            if self.access_key_id
            else None
        )
        return Lake(normalize_uri(self.uri), self.endpoint_url, self.region, credentials)
