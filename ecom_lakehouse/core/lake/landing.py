"""What landed in ``raw/`` since the last look: the raw sensor's logic, free of Dagster.

The cursor is a last-modified high-water mark plus the keys seen inside a short look-back
window (never the whole key list). The window catches objects whose last-modified time is
older than the time they became visible (S3 stamps a multipart upload with its start) and
objects written while the previous tick was listing. An upload is its key, ETag and
last-modified time, so the same upload is never picked twice and a re-upload is (on S3 the
same content keeps its ETag, and a re-uploaded file must still be processed and leave raw/).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.storage import ObjectInfo
from ecom_lakehouse.core.lake.uploads import Upload


@dataclass
class RawCursor:
    high_water: datetime | None = None
    recent: dict[str, str] = field(default_factory=dict)  # key -> upload id, inside the window

    @classmethod
    def parse(cls, text: str | None) -> RawCursor:
        if not text:
            return cls()
        data = json.loads(text)
        high_water = data.get("high_water")
        return cls(high_water and datetime.fromisoformat(high_water), data.get("recent", {}))

    def dump(self) -> str:
        hw = self.high_water.isoformat() if self.high_water else None
        return json.dumps({"high_water": hw, "recent": self.recent}, sort_keys=True)


@dataclass(frozen=True)
class Landed:
    """A new upload in a dataset's folder."""

    upload: Upload
    contract: DatasetContract
    last_modified: datetime
    size: int


@dataclass
class Tick:
    new_files: list[Landed]
    unroutable: list[str]  # raw keys outside every dataset folder
    cursor: RawCursor


def scan(
    objects: Iterable[ObjectInfo],
    cursor: RawCursor,
    lookback: timedelta,
    datasets: Sequence[DatasetContract],
) -> Tick:
    """Pick the uploads not seen before out of a listing of ``raw/``, each routed to the one of
    ``datasets`` whose folder it is in, in load order (``datasets``' order: a dataset after
    the datasets its foreign keys name; then by landing time)."""
    by_folder = {contract.raw_folder: contract for contract in datasets}
    rank = {contract.name: i for i, contract in enumerate(datasets)}
    since = cursor.high_water - lookback if cursor.high_water else None
    new, unroutable, recent = [], [], {}
    high_water = cursor.high_water
    for info in objects:
        if since is not None and info.last_modified < since:
            continue
        if not layout.is_landing_file(info.key):
            continue
        if high_water is None or info.last_modified > high_water:
            high_water = info.last_modified
        upload = Upload.of(info)
        recent[info.key] = (upload.id, info.last_modified)
        if cursor.recent.get(info.key) == upload.id:
            continue
        contract = by_folder.get(layout.raw_folder(upload.file_key))
        if contract is None:
            unroutable.append(info.key)
            continue
        new.append(Landed(upload, contract, info.last_modified, info.size))
    window_start = high_water - lookback if high_water else None
    kept = {k: e for k, (e, lm) in recent.items() if window_start is None or lm >= window_start}
    new.sort(key=lambda f: (rank[f.contract.name], f.last_modified, f.upload.file_key))
    return Tick(new, unroutable, RawCursor(high_water, kept))


def landing_day(moment: datetime) -> date:
    """The day (UTC) an upload landed on: its partition."""
    return moment.astimezone(UTC).date()


@dataclass(frozen=True)
class Batch:
    """Files of one dataset, landed on one day, that one ingest run takes together."""

    contract: DatasetContract
    files: tuple[Landed, ...]

    @property
    def day(self) -> date:
        return landing_day(self.files[0].last_modified)

    @property
    def run_key(self) -> str:
        """The run's identity: its one upload's, or for several, a key named for the first
        file's upload time and a digest of every upload it takes."""
        uploads = [f.upload for f in self.files]
        if len(uploads) == 1:
            return uploads[0].run_key
        digest = hashlib.sha256("\n".join(u.run_key for u in uploads).encode()).hexdigest()
        stamp = datetime.fromtimestamp(uploads[0].version / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"{layout.raw_key(self.contract.raw_folder)}/{stamp}-{digest[:16]}"


def batches(new_files: Sequence[Landed], max_files: int, max_bytes: int) -> list[Batch]:
    """The runs to request for newly landed uploads (in load order, as ``scan`` gives them),
    in that order: grouped per dataset and landing day, in landing order, up to ``max_files``
    and ``max_bytes`` each (a larger file alone)."""
    rank = {name: i for i, name in enumerate(dict.fromkeys(f.contract.name for f in new_files))}
    result: list[Batch] = []
    open_batches: dict[tuple[str, date], list[Landed]] = {}
    open_bytes: dict[tuple[str, date], int] = {}

    def close(group: tuple[str, date]) -> None:
        files = open_batches.pop(group, [])
        open_bytes.pop(group, None)
        if files:
            result.append(Batch(files[0].contract, tuple(files)))

    for landed in new_files:
        group = (landed.contract.name, landing_day(landed.last_modified))
        current = open_batches.setdefault(group, [])
        size = open_bytes.get(group, 0)
        if current and (len(current) >= max_files or size + landed.size > max_bytes):
            close(group)
            current, size = open_batches.setdefault(group, []), 0
        current.append(landed)
        open_bytes[group] = size + landed.size
    for group in list(open_batches):
        close(group)
    # stable: per dataset, landing order
    return sorted(result, key=lambda b: (rank[b.contract.name], b.day))
