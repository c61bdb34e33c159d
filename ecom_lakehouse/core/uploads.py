"""One upload of a landed file: the identity every layer passes along (sensor, validation, the
merge's exactly-once record, the Spark job, the archive move).

A file is its key under ``raw/`` (``orders/orders_apr_2025.xlsx``); an upload of it is that key
with its content (the ETag) and the moment it landed (``version``: last-modified in ms, so a
newer upload of the same key has a larger one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ecom_lakehouse.core import layout
from ecom_lakehouse.core.storage import ObjectInfo

# Keys of the validated Parquet's schema metadata: the upload its rows came from.
META_FILE_KEY = b"ecom_lakehouse.file_key"
META_ETAG = b"ecom_lakehouse.source_etag"
META_VERSION = b"ecom_lakehouse.upload_version"


class UploadMismatch(ValueError):
    """Validated rows that are missing or belong to another file."""


@dataclass(frozen=True)
class Upload:
    file_key: str
    etag: str
    version: int

    @classmethod
    def of(cls, info: ObjectInfo, file_key: str | None = None) -> Upload:
        """The upload an object is (in ``raw/``, or under another zone with ``file_key``)."""
        return cls(
            file_key=file_key or layout.file_key(info.key),
            etag=info.etag,
            version=int(info.last_modified.timestamp() * 1000),
        )

    @property
    def id(self) -> str:
        """The content and the moment: the same content uploaded again is a new upload (it
        runs again, changes nothing, and leaves raw/)."""
        return f"{self.etag}@{self.version}"

    @property
    def run_key(self) -> str:
        return f"{layout.raw_key(self.file_key)}@{self.id}"

    def txn_app_id(self, dataset: str) -> str:
        """The Delta application transaction id of this upload's commit to ``dataset``.

        The ETag is part of the id because S3 last-modified times have one-second resolution:
        two different uploads within a second must not look like one."""
        return f"ecom-lakehouse/{dataset}/{self.file_key}@{self.etag}"

    def parquet_metadata(self) -> dict[bytes, bytes]:
        return {
            META_FILE_KEY: self.file_key.encode(),
            META_ETAG: self.etag.encode(),
            META_VERSION: str(self.version).encode(),
        }

    @classmethod
    def from_parquet_metadata(cls, meta: Mapping[bytes, bytes] | None, file_key: str) -> Upload:
        """The upload recorded in a validated Parquet's metadata, checked to be ``file_key``'s."""
        meta = meta or {}
        if meta.get(META_FILE_KEY, b"").decode() != file_key:
            raise UploadMismatch(
                f"validated rows of {file_key} are missing or belong to another file"
            )
        return cls(file_key, meta[META_ETAG].decode(), int(meta[META_VERSION]))
