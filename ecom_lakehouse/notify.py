"""Notifications per file: failures (and success summaries) to SNS in AWS, to the log locally.

The run status sensors send them for runs started by the daemon; ``ecom-lakehouse ingest``
sends them for its own runs. Both build the same report from the run's events.
"""

import logging
from collections.abc import Sequence

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from ecom_lakehouse.aws import aws_client
from ecom_lakehouse.reports import FileReport, report_for_run

log = logging.getLogger("ecom_lakehouse.notify")


class NotifierResource(dg.ConfigurableResource):
    """Where a person hears about a file. The base class writes to the log."""

    ui_url: str = "http://127.0.0.1:3000"
    notify_success: bool = True

    def publish(self, report: FileReport) -> None:
        if report.success and not report.failed_checks and not self.notify_success:
            return
        level = logging.INFO if report.success and not report.failed_checks else logging.ERROR
        log.log(level, "%s\n%s", report.subject(), report.message(self.ui_url))


class SnsNotifierResource(NotifierResource):
    failure_topic_arn: str
    success_topic_arn: str | None = None
    endpoint_url: str | None = None
    region: str | None = None

    def publish(self, report: FileReport) -> None:
        healthy = report.success and not report.failed_checks
        topic = self.success_topic_arn if healthy else self.failure_topic_arn
        if not topic or (healthy and not self.notify_success):
            return
        aws_client("sns", self.endpoint_url, self.region).publish(
            TopicArn=topic, Subject=report.subject(), Message=report.message(self.ui_url)
        )


NOTIFICATIONS = (
    (
        "file_failure_notifier",
        dg.DagsterRunStatus.FAILURE,
        "Tells a person which file failed, in which asset, why, and where the run is.",
    ),
    (
        "file_success_notifier",
        dg.DagsterRunStatus.SUCCESS,
        "A summary per loaded file (rows read, loaded, rejected; failed checks).",
    ),
)


def build_notification_sensors(
    jobs: Sequence[UnresolvedAssetJobDefinition],
) -> list[dg.SensorDefinition]:
    sensors = []
    for name, status, description in NOTIFICATIONS:

        @dg.run_status_sensor(
            name=name,
            run_status=status,
            monitored_jobs=list(jobs),
            default_status=dg.DefaultSensorStatus.RUNNING,
            description=description,
        )
        def notify(context: dg.RunStatusSensorContext, notifier: NotifierResource) -> None:
            notifier.publish(report_for_run(context.instance, context.dagster_run))

        sensors.append(notify)
    return list(sensors)
