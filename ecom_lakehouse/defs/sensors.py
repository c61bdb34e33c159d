"""The raw-zone sensor: one dynamic partition and one run per newly landed file.

The cursor is a last-modified high-water mark plus the keys seen inside a short look-back
window (never the whole key list). The window catches objects whose last-modified time is
older than the time they became visible (S3 stamps a multipart upload with its start) and
objects written while the previous tick was listing. ``run_key`` = key + ETag + last-modified,
so the same upload never runs twice and a re-upload does (on S3 the same content keeps its
ETag, and a re-uploaded file must still be processed and leave raw/).
"""

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from ecom_lakehouse.contracts import (
    CONTRACTS,
    DatasetContract,
    contract_for_raw_folder,
    load_rank,
)
from ecom_lakehouse.core import layout
from ecom_lakehouse.core.storage import ObjectInfo
from ecom_lakehouse.defs.reports import FILE_TAG
from ecom_lakehouse.names import ingest_job_name
from ecom_lakehouse.resources.lake import LakeResource

SENSOR_NAME = "raw_files_sensor"
LOOKBACK = timedelta(seconds=int(os.environ.get("LAKEHOUSE_SENSOR_LOOKBACK_SECONDS", "900")))
# The least time between two evaluations. Dagster's daemon visits sensors in a 5 s loop, and
# counts the interval from when the last tick ended: at 5, every other visit found less than
# 5 s elapsed and skipped, so a landing waited up to ~10 s for the sensor. At 1, the sensor
# runs on every visit (one LIST of raw/ per ~5 s).
INTERVAL_SECONDS = int(os.environ.get("LAKEHOUSE_SENSOR_INTERVAL_SECONDS", "1"))


def upload_id(info: ObjectInfo) -> str:
    """One upload of a key: its ETag (the content) and when it landed. The same content
    uploaded again is a new upload: it runs again (and changes nothing), and leaves raw/."""
    return f"{info.etag}@{int(info.last_modified.timestamp() * 1000)}"


def run_key(info: ObjectInfo) -> str:
    return f"{info.key}@{upload_id(info)}"


@dataclass
class RawCursor:
    high_water: datetime | None = None
    recent: dict[str, str] = field(default_factory=dict)  # key -> upload id, inside the window

    @classmethod
    def parse(cls, text: str | None) -> "RawCursor":
        if not text:
            return cls()
        data = json.loads(text)
        high_water = data.get("high_water")
        return cls(high_water and datetime.fromisoformat(high_water), data.get("recent", {}))

    def dump(self) -> str:
        hw = self.high_water.isoformat() if self.high_water else None
        return json.dumps({"high_water": hw, "recent": self.recent}, sort_keys=True)


@dataclass
class Tick:
    new_files: list[ObjectInfo]
    unroutable: list[str]
    cursor: RawCursor


def scan(objects: Iterable[ObjectInfo], cursor: RawCursor) -> Tick:
    """Pick the uploads not seen before out of a listing of ``raw/``."""
    since = cursor.high_water - LOOKBACK if cursor.high_water else None
    new, unroutable, recent = [], [], {}
    high_water = cursor.high_water
    for info in objects:
        if since is not None and info.last_modified < since:
            continue
        if not layout.is_landing_file(info.key):
            continue
        if high_water is None or info.last_modified > high_water:
            high_water = info.last_modified
        recent[info.key] = (upload_id(info), info.last_modified)
        if cursor.recent.get(info.key) == upload_id(info):
            continue
        if _contract_of(info) is None:
            unroutable.append(info.key)
            continue
        new.append(info)
    window_start = high_water - LOOKBACK if high_water else None
    kept = {k: e for k, (e, lm) in recent.items() if window_start is None or lm >= window_start}
    new.sort(key=lambda i: (load_rank(dataset_of(i)), i.last_modified, i.key))
    return Tick(new, unroutable, RawCursor(high_water, kept))


def _contract_of(info: ObjectInfo) -> DatasetContract | None:
    return contract_for_raw_folder(layout.raw_folder(layout.file_key(info.key)))


def dataset_of(info: ObjectInfo) -> str:
    contract = _contract_of(info)
    assert contract is not None, f"{info.key} is in no dataset folder"
    return contract.name


def sensor_result(
    tick: Tick, partitions: dict[str, dg.DynamicPartitionsDefinition]
) -> dg.SensorResult:
    by_dataset: dict[str, list[str]] = {}
    requests = []
    for info in tick.new_files:
        dataset = dataset_of(info)
        fk = layout.file_key(info.key)
        by_dataset.setdefault(dataset, []).append(fk)
        requests.append(
            dg.RunRequest(
                job_name=ingest_job_name(dataset),
                partition_key=fk,
                run_key=run_key(info),
                tags={FILE_TAG: fk, "ecom_lakehouse/etag": info.etag},
            )
        )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[
            partitions[ds].build_add_request(sorted(set(keys))) for ds, keys in by_dataset.items()
        ],
        cursor=tick.cursor.dump(),
    )


def build_raw_sensor(
    jobs: Sequence[UnresolvedAssetJobDefinition],
    partitions: dict[str, dg.DynamicPartitionsDefinition],
) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        jobs=list(jobs),
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Lists {layout.RAW} and starts one ingest run per new upload of a file in a "
            f"dataset's folder ({', '.join(c.raw_folder for c in CONTRACTS.values())})."
        ),
    )
    def raw_files_sensor(
        context: dg.SensorEvaluationContext, lake: LakeResource
    ) -> dg.SensorResult:
        tick = scan(lake.lake().list(layout.RAW), RawCursor.parse(context.cursor))
        folders = ", ".join(c.raw_folder for c in CONTRACTS.values())
        for key in tick.unroutable:
            context.log.warning(
                f"{key} is not in a dataset folder ({folders}); it is left in raw/ untouched"
            )
        return sensor_result(tick, partitions)

    return raw_files_sensor
