"""The lakehouse's CloudWatch metrics (names, units, one namespace) and the monitoring stack made
from them and the contracts: a dashboard and the alarms that notify the failure topic.

The template is rendered, not hand-written, so each dataset's stale-table alarm has the interval
its contract declares (the same one its freshness check uses): ``ecom-lakehouse
monitoring-template`` writes ``deploy/cloudformation/monitoring.yaml``; a test fails when the
committed file differs from what the contracts render.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import yaml

from ecom_lakehouse.contracts import DatasetContract

NAMESPACE = "EcomLakehouse"
DATASET = "Dataset"  # the dimension of every per-dataset figure
# A load's figure (its asset metadata key) -> (CloudWatch metric name, unit)
METRICS: dict[str, tuple[str, str]] = {
    "rows_read": ("RowsRead", "Count"),
    "rows_rejected": ("RowsRejected", "Count"),
    "batch_files": ("FilesTaken", "Count"),
    "batch_files_rejected": ("FilesRejected", "Count"),
    "rows_inserted": ("RowsInserted", "Count"),
    "rows_updated": ("RowsUpdated", "Count"),
    "rows_stale": ("RowsStale", "Count"),
    "load_seconds": ("LoadSeconds", "Seconds"),
    "lag_seconds_max": ("LagSecondsMax", "Seconds"),
    "runs_failed": ("RunsFailed", "Count"),  # any job's failed run, no dimension
}
LOAD_SECONDS = METRICS["load_seconds"][0]  # published by every load, even one that changes nothing

DAY = 86_400
# CloudWatch evaluates an alarm over at most a day of periods shorter than an hour, and over at
# most 7 days of longer ones.
MAX_ALARM_WINDOW = 7 * DAY

ENV = "${EnvironmentName}"


def _imported(export: str) -> dict[str, Any]:
    """A value another of the environment's stacks exports."""
    return {"Fn::ImportValue": {"Fn::Sub": f"{ENV}-{export}"}}


def _metric(name: str, dataset: str | None = None) -> list[Any]:
    metric: list[Any] = [NAMESPACE, name]
    return [*metric, DATASET, dataset] if dataset else metric


def stale_window(freshness: timedelta) -> tuple[int, int]:
    """(period, evaluation periods) covering ``freshness``: no load in that long breaches."""
    seconds = int(freshness.total_seconds())
    if seconds > MAX_ALARM_WINDOW or seconds < 60 or seconds % 60:
        raise ValueError(f"a freshness of {freshness} cannot be a CloudWatch alarm's window")
    if seconds <= DAY:
        return seconds, 1
    if seconds % DAY:
        raise ValueError(f"a freshness over a day must be whole days, not {freshness}")
    return DAY, seconds // DAY


def spoken(interval: timedelta) -> str:
    """``timedelta(days=7)`` as "7 days", ``timedelta(minutes=15)`` as "15 minutes"."""
    seconds = int(interval.total_seconds())
    unit, size = next(
        (u, n) for u, n in (("day", DAY), ("hour", 3600), ("minute", 60)) if seconds % n == 0
    ) if seconds % 60 == 0 else ("second", 1)  # fmt: skip
    count = seconds // size
    return f"{count} {unit}{'s' if count != 1 else ''}"


def _alarm(description: str, **properties: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            "ActionsEnabled": True,
            "AlarmActions": [_imported("FailureTopicArn")],
            "OKActions": [_imported("FailureTopicArn")],
            **properties,
        },
    }


def _at_least_one(description: str, name: str, **metric: Any) -> dict[str, Any]:
    """An alarm on any occurrence of ``metric`` within five minutes."""
    return _alarm(
        description,
        AlarmName={"Fn::Sub": f"{ENV}-{name}"},
        **metric,
        Period=300,
        EvaluationPeriods=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        Threshold=1,
        TreatMissingData="notBreaching",
    )


def _resource_name(dataset: str) -> str:
    return "".join(part.capitalize() for part in dataset.split("_"))


def dataset_alarms(contract: DatasetContract) -> dict[str, Any]:
    name, dataset = _resource_name(contract.name), contract.name
    dims = [{"Name": DATASET, "Value": dataset}]
    rows_rejected, rows_read = METRICS["rows_rejected"][0], METRICS["rows_read"][0]
    alarms = {
        f"{name}RejectedRowRateAlarm": _alarm(
            f"{dataset}: more than RejectedRowPercent of the rows read in an hour were rejected "
            "(see rejected/records/ and the runs' rejected_by_reason)",
            AlarmName={"Fn::Sub": f"{ENV}-{dataset}-rejected-rows"},
            ComparisonOperator="GreaterThanThreshold",
            Threshold={"Ref": "RejectedRowPercent"},
            EvaluationPeriods=1,
            TreatMissingData="notBreaching",
            Metrics=[
                {
                    "Id": "rate",
                    "Expression": "100 * FILL(rejected, 0) / read",
                    "Label": "rejected rows (% of rows read)",
                    "ReturnData": True,
                },
                *(
                    {
                        "Id": metric_id,
                        "ReturnData": False,
                        "MetricStat": {
                            "Metric": {
                                "Namespace": NAMESPACE,
                                "MetricName": metric,
                                "Dimensions": dims,
                            },
                            "Period": 3600,
                            "Stat": "Sum",
                        },
                    }
                    for metric_id, metric in (("rejected", rows_rejected), ("read", rows_read))
                ),
            ],
        )
    }
    if contract.freshness is not None:
        period, periods = stale_window(contract.freshness)
        alarms[f"{name}StaleAlarm"] = _alarm(
            f"{dataset}: no load in {spoken(contract.freshness)} (the contract's freshness; the "
            "table's freshness check in Dagster says the same)",
            AlarmName={"Fn::Sub": f"{ENV}-{dataset}-stale"},
            Namespace=NAMESPACE,
            MetricName=LOAD_SECONDS,
            Dimensions=dims,
            Statistic="SampleCount",
            Period=period,
            EvaluationPeriods=periods,
            DatapointsToAlarm=periods,
            ComparisonOperator="LessThanThreshold",
            Threshold=1,
            # no datapoint at all is what a stale table looks like
            TreatMissingData="breaching",
        )
    return alarms


def _widget(title: str, metrics: list[list[Any]], y: int, x: int, stat: str) -> dict[str, Any]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "region": "${AWS::Region}",
            "stat": stat,
            "period": 300,
            "view": "timeSeries",
            "metrics": metrics,
        },
    }


def dashboard_body(contracts: Iterable[DatasetContract]) -> str:
    datasets = [c.name for c in contracts]

    def per_dataset(key: str) -> list[list[Any]]:
        return [_metric(METRICS[key][0], dataset) for dataset in datasets]

    queue = ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "${DeadLetterQueue}"]
    trigger = ["AWS/States", "ExecutionsFailed", "StateMachineArn", "${TriggerStateMachine}"]
    widgets = [
        _widget("Rows inserted", per_dataset("rows_inserted"), 0, 0, "Sum"),
        _widget("Rows updated", per_dataset("rows_updated"), 0, 12, "Sum"),
        _widget("Rows rejected", per_dataset("rows_rejected"), 6, 0, "Sum"),
        _widget("Files rejected whole", per_dataset("batch_files_rejected"), 6, 12, "Sum"),
        _widget("Lag, landing to commit (s)", per_dataset("lag_seconds_max"), 12, 0, "Maximum"),
        _widget("Load time (s)", per_dataset("load_seconds"), 12, 12, "Maximum"),
        _widget("Failed Dagster runs", [_metric(METRICS["runs_failed"][0])], 18, 0, "Sum"),
        _widget("Trigger: dead letters, failed forwards", [queue, trigger], 18, 12, "Maximum"),
    ]
    # one widget per line: a reviewable diff when a dataset or a widget changes
    return '{"widgets": [\n' + ",\n".join(json.dumps(w) for w in widgets) + "\n]}"


def monitoring_template(contracts: Iterable[DatasetContract]) -> dict[str, Any]:
    contracts = list(contracts)
    dead_letters = _imported("TriggerDeadLetterQueueName")
    resources: dict[str, Any] = {
        "Dashboard": {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardName": {"Fn::Sub": ENV},
                "DashboardBody": {
                    "Fn::Sub": [
                        dashboard_body(contracts),
                        {
                            "DeadLetterQueue": dead_letters,
                            "TriggerStateMachine": _imported("TriggerStateMachineArn"),
                        },
                    ]
                },
            },
        },
        "FailedRunsAlarm": _at_least_one(
            "A Dagster run failed (any job): the failure topic also has the run's files and why",
            "failed-runs",
            Namespace=NAMESPACE,
            MetricName=METRICS["runs_failed"][0],
            Statistic="Sum",
        ),
        "DeadLettersAlarm": _at_least_one(
            "Events the trigger could not deliver to its state machine are waiting in its "
            "dead-letter queue (the raw_files_sensor still picks their files up)",
            "trigger-dead-letters",
            Namespace="AWS/SQS",
            MetricName="ApproximateNumberOfMessagesVisible",
            Dimensions=[{"Name": "QueueName", "Value": dead_letters}],
            Statistic="Maximum",
        ),
    }
    for contract in contracts:
        resources.update(dataset_alarms(contract))
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (
            "ecom-lakehouse monitoring: a dashboard of loads, rejects, lag, failed runs and the "
            "trigger's dead letters, and alarms (failed runs, a rejected-row rate, a stale table, "
            "dead letters) notifying the failure topic. Rendered from the contracts by "
            "`ecom-lakehouse monitoring-template`: do not edit by hand. Needs the storage, "
            "dagster and trigger stacks."
        ),
        "Parameters": {
            "EnvironmentName": {
                "Type": "String",
                "Default": "ecom-lakehouse",
                "AllowedPattern": "[a-z][a-z0-9-]{2,30}",
            },
            "RejectedRowPercent": {
                "Type": "Number",
                "Default": 5,
                "MinValue": 0,
                "MaxValue": 100,
                "Description": "A dataset's rejected rows, in % of its rows read in an hour, "
                "above which its alarm goes off.",
            },
        },
        "Resources": resources,
    }


class _TemplateDumper(yaml.SafeDumper):
    """Multi-line text (the dashboard's body) as a literal block, readable in review; a value
    used twice written out twice (no YAML anchors)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_TemplateDumper.add_representer(str, _text)


def monitoring_template_yaml(contracts: Iterable[DatasetContract]) -> str:
    header = "# Rendered by `ecom-lakehouse monitoring-template` from the contracts: do not edit.\n"
    body = yaml.dump(
        monitoring_template(contracts), Dumper=_TemplateDumper, sort_keys=False, width=100
    )
    return header + body
