"""The raw-zone sensor: a dynamic partition per newly landed file, and ingest runs that each
take a batch of them (what is new, and how it is batched, is ``core/landing.py``'s to decide)."""

from collections.abc import Callable, Iterable
from datetime import timedelta

import dagster as dg

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.core import layout
from ecom_lakehouse.core.landing import Batch, RawCursor, Tick, batches, scan
from ecom_lakehouse.defs.ingest import IngestFiles
from ecom_lakehouse.names import (
    AUTOMATION_SENSOR,
    ETAG_TAG,
    FILE_TAG,
    FILES_TAG,
    RAW_SENSOR,
    names_of,
)
from ecom_lakehouse.resources.lake import LakeResource
from ecom_lakehouse.resources.settings import SensorSettings


def batch_run_request(batch: Batch) -> dg.RunRequest:
    """One ingest run for the batch's uploads, on the batch's partition (the one file's, or a
    batch's), with the uploads in its run config: re-executing the run takes the same ones, and
    a run that finds one taken by another writer skips it."""
    n, uploads = names_of(batch.contract), [f.upload for f in batch.files]
    tags = {FILES_TAG: str(len(uploads))}
    if len(uploads) == 1:
        (upload,) = uploads
        tags |= {FILE_TAG: upload.file_key, ETAG_TAG: upload.etag}
    files = IngestFiles(
        files=[u.file_key for u in uploads], etags={u.file_key: u.etag for u in uploads}
    )
    return dg.RunRequest(
        job_name=n.ingest_job,
        partition_key=batch.partition_key,
        # a file's run names its upload; a batch's partition key names every upload it takes
        run_key=uploads[0].run_key if len(uploads) == 1 else batch.partition_key,
        # only the ops' section: the run's other sections (loggers, ...) are the launcher's
        run_config={"ops": {n.validated.to_python_identifier(): {"config": files.model_dump()}}},
        tags=tags,
    )


def sensor_result(
    tick: Tick, has_partition: Callable[[str, str], bool], settings: SensorSettings
) -> dg.SensorResult:
    """Runs for the tick's new uploads, in batches, each on its partition (added when new).
    ``has_partition(name, key)``: whether a dynamic partitions definition has the key."""
    planned = batches(tick.new_files, settings.max_files_per_run, settings.max_bytes_per_run)
    added: dict[str, list[str]] = {}
    for batch in planned:
        name = names_of(batch.contract).partitions
        if not has_partition(name, batch.partition_key):
            added.setdefault(name, []).append(batch.partition_key)
    return dg.SensorResult(
        run_requests=[batch_run_request(b) for b in planned],
        dynamic_partitions_requests=[
            dg.AddDynamicPartitionsRequest(name, keys) for name, keys in added.items()
        ],
        cursor=tick.cursor.dump(),
    )


def raw_sensor_definitions(
    ingest: Iterable[dg.Definitions], settings: SensorSettings
) -> dg.Definitions:
    folders = ", ".join(c.raw_folder for c in CONTRACTS.values())
    lookback = timedelta(seconds=settings.lookback_seconds)

    @dg.sensor(
        name=RAW_SENSOR,
        jobs=[job for defs in ingest for job in defs.jobs or []],
        minimum_interval_seconds=settings.interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Lists {layout.RAW} and starts ingest runs for the new uploads in the datasets' "
            f"folders ({folders}): up to {settings.max_files_per_run} files of one dataset "
            "per run; a re-uploaded file in a run of its own."
        ),
    )
    def raw_files_sensor(
        context: dg.SensorEvaluationContext, lake: LakeResource
    ) -> dg.SensorResult:
        tick = scan(lake.lake().list(layout.RAW), RawCursor.parse(context.cursor), lookback)
        for key in tick.unroutable:
            context.log.warning(
                f"{key} is not in a dataset folder ({folders}); it is left in raw/ untouched"
            )
        return sensor_result(tick, context.instance.has_dynamic_partition, settings)

    return dg.Definitions(sensors=[raw_files_sensor])


def automation_sensor_definitions(
    target: dg.AssetSelection, settings: SensorSettings
) -> dg.Definitions:
    """Declarative automation for the assets whose conditions say when to refresh (catalog
    entries, KPI tables)."""
    return dg.Definitions(
        sensors=[
            dg.AutomationConditionSensorDefinition(
                AUTOMATION_SENSOR,
                target=target,
                default_status=dg.DefaultSensorStatus.RUNNING,
                minimum_interval_seconds=settings.automation_interval_seconds,
                description="Refreshes catalog entries and KPI tables after their tables change.",
            )
        ]
    )
