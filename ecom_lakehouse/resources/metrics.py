"""Where each load's figures go besides the asset's metadata (which the UI plots): CloudWatch in
AWS (one namespace, a ``Dataset`` dimension, PutMetricData), nowhere else locally."""

from abc import ABC, abstractmethod
from collections.abc import Mapping

import dagster as dg

from ecom_lakehouse.resources.aws import aws_client

NAMESPACE = "EcomLakehouse"
# metadata key -> (CloudWatch metric name, unit)
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
}


class MetricsSink(dg.ConfigurableResource, ABC):
    @abstractmethod
    def publish(self, dataset: str, metadata: Mapping[str, object]) -> None:
        """Send the figures among ``metadata`` (those ``METRICS`` names) for ``dataset``."""


class NoMetrics(MetricsSink):
    """Locally the asset's metadata is the record (the UI plots it)."""

    def publish(self, dataset: str, metadata: Mapping[str, object]) -> None:
        return None


class CloudWatchMetrics(MetricsSink):
    namespace: str = NAMESPACE
    endpoint_url: str | None = None
    region: str | None = None

    def publish(self, dataset: str, metadata: Mapping[str, object]) -> None:
        data = [
            {
                "MetricName": name,
                "Dimensions": [{"Name": "Dataset", "Value": dataset}],
                "Value": float(str(metadata[key])),
                "Unit": unit,
            }
            for key, (name, unit) in METRICS.items()
            if isinstance(metadata.get(key), int | float)
        ]
        if data:
            client = aws_client("cloudwatch", self.endpoint_url, self.region)
            client.put_metric_data(Namespace=self.namespace, MetricData=data)
