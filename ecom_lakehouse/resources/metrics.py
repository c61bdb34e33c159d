"""Where each load's figures go besides the asset's metadata (which the UI plots): CloudWatch in
AWS (one namespace, a ``Dataset`` dimension, PutMetricData), nowhere else locally. Names and
units are ``resources/cloudwatch.py``'s, which the dashboard and alarms are made from."""

from abc import ABC, abstractmethod
from collections.abc import Mapping

import dagster as dg

from ecom_lakehouse.resources.aws import aws_client
from ecom_lakehouse.resources.cloudwatch import DATASET, METRICS, NAMESPACE


class MetricsSink(dg.ConfigurableResource, ABC):
    @abstractmethod
    def publish(self, figures: Mapping[str, object], dataset: str | None = None) -> None:
        """Send the figures among ``figures`` (those ``METRICS`` names), for ``dataset`` or,
        without one, for the whole lakehouse."""


class NoMetrics(MetricsSink):
    """Locally the asset's metadata is the record (the UI plots it)."""

    def publish(self, figures: Mapping[str, object], dataset: str | None = None) -> None:
        return None


class CloudWatchMetrics(MetricsSink):
    namespace: str = NAMESPACE
    endpoint_url: str | None = None
    region: str | None = None

    def publish(self, figures: Mapping[str, object], dataset: str | None = None) -> None:
        dimensions = [{"Name": DATASET, "Value": dataset}] if dataset else []
        data = [
            {
                "MetricName": name,
                "Dimensions": dimensions,
                "Value": float(str(figures[key])),
                "Unit": unit,
            }
            for key, (name, unit) in METRICS.items()
            if isinstance(figures.get(key), int | float)
        ]
        if data:
            client = aws_client("cloudwatch", self.endpoint_url, self.region)
            client.put_metric_data(Namespace=self.namespace, MetricData=data)
