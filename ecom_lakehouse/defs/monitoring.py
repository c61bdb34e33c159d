"""Monitoring: a freshness check per dataset table, with the interval its contract declares
(orders at least daily, transactions every 15 minutes), evaluated by a sensor that runs while
the daemon does. A table whose last load is older than its interval, or that was never loaded,
fails its check (WARN): the UI shows it on the asset and in the checks' list.

Dagster 1.13 marks these factories as superseded by ``FreshnessPolicy``, a state its daemon
keeps per asset. Checks are kept on purpose, the superseded warning silenced only around the
two factories: in open-source Dagster (``dagster dev`` and the ECS deployment) the UI shows a
policy's state only through asset health, which it does not support
(``dagster_asset_health_queries_supported`` is False), and the state can be read back only by
an instance method outside the public API (``get_freshness_state_records``). A check gives a
result per evaluation with its reason (the last update, how overdue), in the same list as the
tables' other checks, which ``ecom-lakehouse status`` and the tests read through public APIs.

A failed run of any job counts in the ``RunsFailed`` metric (CloudWatch in AWS), which the
monitoring stack's alarm watches."""

import warnings
from collections.abc import Iterable

import dagster as dg

from ecom_lakehouse.contracts import DatasetContract
from ecom_lakehouse.names import FAILED_RUNS_SENSOR, FRESHNESS_SENSOR, names_of
from ecom_lakehouse.resources.metrics import MetricsSink

# How often the sensor looks: a check is only evaluated once it could have changed, so this
# bounds how late a stale table is noticed (a minute, against intervals of 15 minutes and up).
FRESHNESS_SENSOR_INTERVAL_SECONDS = 60


def freshness_checks(contracts: Iterable[DatasetContract]) -> list[dg.AssetChecksDefinition]:
    checks: list[dg.AssetChecksDefinition] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        for contract in contracts:
            if contract.freshness is not None:
                checks += dg.build_last_update_freshness_checks(
                    assets=[names_of(contract).table], lower_bound_delta=contract.freshness
                )
    return checks


def monitoring_definitions(contracts: Iterable[DatasetContract]) -> dg.Definitions:
    checks = freshness_checks(contracts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        sensor = dg.build_sensor_for_freshness_checks(
            freshness_checks=checks,
            name=FRESHNESS_SENSOR,
            minimum_interval_seconds=FRESHNESS_SENSOR_INTERVAL_SECONDS,
            default_status=dg.DefaultSensorStatus.RUNNING,
        )
    return dg.Definitions(asset_checks=checks, sensors=[sensor, failed_runs_metric])


@dg.run_failure_sensor(
    name=FAILED_RUNS_SENSOR,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Counts every failed run (any job) in the RunsFailed metric.",
)
def failed_runs_metric(context: dg.RunFailureSensorContext, metrics: MetricsSink) -> None:
    metrics.publish({"runs_failed": 1})
