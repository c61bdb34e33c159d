"""One upload of a landed file: the identity every layer passes along (sensor, validation, the
merge's exactly-once record, the Spark job, the archive move).

A file is its key under ``raw/`` (``orders/orders_apr_2025.xlsx``); an upload of it is that key
with its content (the ETag) and the moment it landed (``version``: last-modified in ms, so a
newer upload of the same key has a larger one). The version orders uploads when two carry the
same key at the same sequence (newest wins), so it survives the move to ``archived/`` (a
record beside the archived file keeps it): re-processing an old file from the archive does
not make it new. Such a re-process is a new *delivery* of the upload (``delivery``: when it
was re-processed), which the exactly-once record tells apart from a replay.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import ObjectInfo


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class Upload:
    file_key: str
    etag: str
    version: int  # when it landed in raw/ (ms)
    delivery: int | None = None  # when this copy was made (ms), if not the landed object
    source_key: str | None = None  # where a re-delivery reads it (archived/, rejected/), not raw/

    @classmethod
    def of(cls, info: ObjectInfo) -> Upload:
        """The upload a landed object in ``raw/`` is."""
        return cls(layout.file_key(info.key), info.etag, millis(info.last_modified))

    def redelivered(self, at: datetime, source_key: str) -> Upload:
        """This upload, delivered again at ``at``: re-processed from ``source_key``, its copy
        under ``archived/`` or ``rejected/``."""
        return replace(self, delivery=millis(at), source_key=source_key)

    @property
    def landed_at(self) -> datetime:
        return datetime.fromtimestamp(self.version / 1000, UTC)

    @property
    def txn_version(self) -> int:
        """The version its exactly-once record carries: a re-delivery is applied once more."""
        return self.delivery if self.delivery is not None else self.version

    def as_dict(self) -> dict[str, object]:
        fields: dict[str, object] = {"file": self.file_key, "etag": self.etag}
        fields["version"] = self.version
        if self.delivery is not None:
            fields["delivery"] = self.delivery
        if self.source_key is not None:
            fields["source_key"] = self.source_key
        return fields

    @classmethod
    def from_dict(cls, fields: Mapping[str, object]) -> Upload:
        delivery, source_key = fields.get("delivery"), fields.get("source_key")
        return cls(
            str(fields["file"]),
            str(fields["etag"]),
            int(str(fields["version"])),
            int(str(delivery)) if delivery is not None else None,
            str(source_key) if source_key is not None else None,
        )

    def record(self) -> bytes:
        """What is kept beside the archived file (JSON): the upload as it landed."""
        landed = replace(self, delivery=None, source_key=None)
        return json.dumps(landed.as_dict(), indent=2).encode()

    @classmethod
    def from_record(cls, data: bytes) -> Upload:
        return cls.from_dict(json.loads(data))

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
