"""The raw-zone sensor: one dynamic partition and one ingest run per newly landed upload
(what is new is ``core/landing.py``'s to decide)."""

from collections.abc import Iterable
from datetime import timedelta

import dagster as dg

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.core import layout
from ecom_lakehouse.core.landing import RawCursor, Tick, scan
from ecom_lakehouse.names import AUTOMATION_SENSOR, ETAG_TAG, FILE_TAG, RAW_SENSOR, names_of
from ecom_lakehouse.resources.lake import LakeResource
from ecom_lakehouse.resources.settings import SensorSettings


def sensor_result(tick: Tick) -> dg.SensorResult:
    by_partitions: dict[str, list[str]] = {}
    requests = []
    for landed in tick.new_files:
        n, upload = names_of(landed.contract), landed.upload
        by_partitions.setdefault(n.partitions, []).append(upload.file_key)
        requests.append(
            dg.RunRequest(
                job_name=n.ingest_job,
                partition_key=upload.file_key,
                run_key=upload.run_key,
                tags={FILE_TAG: upload.file_key, ETAG_TAG: upload.etag},
            )
        )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[
            dg.AddDynamicPartitionsRequest(name, sorted(set(keys)))
            for name, keys in by_partitions.items()
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
            f"Lists {layout.RAW} and starts one ingest run per new upload of a file in a "
            f"dataset's folder ({folders})."
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
        return sensor_result(tick)

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
