"""The raw-zone sensor: ingest runs that each take a batch of newly landed files, on the day
they landed (what is new, and how it is batched, is ``core/lake/landing.py``'s to decide)."""

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

import dagster as dg

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.core.lake.landing import Batch, RawCursor, Tick, batches, scan
from ecom_lakehouse.defs.ingest import ingest_run_config
from ecom_lakehouse.names import (
    AUTOMATION_SENSOR,
    ETAG_TAG,
    FILE_TAG,
    FILES_TAG,
    LANDED_TAG,
    RAW_SENSOR,
    names_of,
)
from ecom_lakehouse.resources.lake import LakeResource
from ecom_lakehouse.resources.settings import SensorSettings


def batch_run_request(batch: Batch, days: dg.TimeWindowPartitionsDefinition) -> dg.RunRequest:
    """One ingest run for the batch's uploads, on the day they landed, with the uploads in its
    run config: re-executing the run takes the same ones, and a run that finds one taken by
    another writer skips it."""
    names, uploads = names_of(batch.contract), [f.upload for f in batch.files]
    tags = {FILES_TAG: str(len(uploads)), LANDED_TAG: batch.day.isoformat()}
    if len(uploads) == 1:
        (upload,) = uploads
        tags |= {FILE_TAG: upload.file_key, ETAG_TAG: upload.etag}
    return dg.RunRequest(
        job_name=names.ingest_job,
        partition_key=day_partition(days, batch.day),
        run_key=batch.run_key,
        # only the ops' section: the run's other sections (loggers, ...) are the launcher's
        run_config=ingest_run_config(
            batch.contract, [u.file_key for u in uploads], {u.file_key: u.etag for u in uploads}
        ),
        tags=tags,
    )


def day_partition(days: dg.TimeWindowPartitionsDefinition, day: date) -> str:
    """The partition of a landing day: the first one for a file that landed before it (a
    copy that kept an old time), the last one (today) for one stamped in the future."""
    key = day.strftime(days.fmt)
    first, last = days.get_first_partition_key(), days.get_last_partition_key()
    if first is None or last is None:
        raise ValueError(f"no landing day is a partition yet ({days})")
    return min(max(key, first), last)  # the format sorts as the days do


def sensor_result(
    tick: Tick, days: dg.TimeWindowPartitionsDefinition, settings: SensorSettings
) -> dg.SensorResult:
    """Runs for the tick's new uploads, in batches, each on the day its files landed."""
    planned = batches(tick.new_files, settings.max_files_per_run, settings.max_bytes_per_run)
    return dg.SensorResult(
        run_requests=[batch_run_request(b, days) for b in planned], cursor=tick.cursor.dump()
    )


def raw_sensor_definitions(
    datasets: Sequence[DatasetContract],
    ingest: Iterable[dg.Definitions],
    days: dg.TimeWindowPartitionsDefinition,
    settings: SensorSettings,
) -> dg.Definitions:
    """The raw sensor, for ``datasets`` (in load order) and their ingest jobs."""
    folders = ", ".join(c.raw_folder for c in datasets)
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
        cursor = RawCursor.parse(context.cursor)
        tick = scan(lake.lake().list(layout.RAW), cursor, lookback, datasets)
        for key in tick.unroutable:
            context.log.warning(
                f"{key} is not in a dataset folder ({folders}); it is left in raw/ untouched"
            )
        return sensor_result(tick, days, settings)

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
