"""Notifications per file: failures (and success summaries) to SNS in AWS, to the log locally.

The run status sensors send them for runs started by the daemon; ``ecom-lakehouse ingest``
sends them for its own runs. Both build the same report from the run's events.
"""

import logging
from abc import ABC, abstractmethod

import dagster as dg

from ecom_lakehouse.resources.aws import aws_client
from ecom_lakehouse.runner.reports import FileReport

log = logging.getLogger("ecom_lakehouse.notify")


class Notifier(dg.ConfigurableResource, ABC):
    """Where a person hears about a file: its failure, or a summary of its load."""

    ui_url: str = "http://127.0.0.1:3000"
    notify_success: bool = True

    @abstractmethod
    def publish(self, report: FileReport) -> None: ...


class LogNotifier(Notifier):
    """The local default: the log."""

    def publish(self, report: FileReport) -> None:
        if report.success and not report.failed_checks and not self.notify_success:
            return
        level = logging.INFO if report.success and not report.failed_checks else logging.ERROR
        log.log(level, "%s\n%s", report.subject(), report.message(self.ui_url))


class SnsNotifier(Notifier):
    """A failure topic, and optionally a success topic, in SNS."""

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
