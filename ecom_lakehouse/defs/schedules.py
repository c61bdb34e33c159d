"""What every schedule of the project shares: a cron in UTC, and on or off from the settings."""

from typing import Any, Protocol

import dagster as dg


class ScheduleSettings(Protocol):
    @property
    def cron(self) -> str: ...

    @property
    def running(self) -> bool: ...


def schedule_timing(settings: ScheduleSettings) -> dict[str, Any]:
    """The arguments a schedule takes from its settings."""
    return {
        "cron_schedule": settings.cron,
        "execution_timezone": "UTC",
        "default_status": (
            dg.DefaultScheduleStatus.RUNNING
            if settings.running
            else dg.DefaultScheduleStatus.STOPPED
        ),
    }
