"""What happened to one file in one run: the line the CLI prints and the notification a person
gets (built from the run's Dagster events by ``defs/reports.py``)."""

from dataclasses import dataclass, field


@dataclass
class FileReport:
    file_key: str
    dataset: str
    success: bool
    run_id: str = ""
    job_name: str = ""
    metadata: dict[str, dict[str, object]] = field(default_factory=dict)  # asset -> metadata
    checks: dict[str, bool] = field(default_factory=dict)  # check name -> passed
    failed_step: str = ""
    error: str = ""
    rejection: str = ""  # invalid_schema / unreadable when the file was rejected whole
    moved_to: str = ""  # where a rejected (or skipped) file now is
    skipped: str = ""  # why there was nothing to do: another writer took the file
    traceback: str = ""  # of an unexpected error (not of a rejection)
    batch_files: int = 1  # how many files its run loaded (merged in one commit)

    @property
    def failed_checks(self) -> list[str]:
        return [name for name, passed in self.checks.items() if not passed]

    @property
    def status(self) -> str:
        if self.rejection:
            return "REJECTED"
        if self.skipped:
            return "SKIPPED"
        if not self.success:
            return "FAILED"
        return "CHECKS FAILED" if self.failed_checks else "OK"

    def summary(self) -> str:
        if self.rejection:
            return f"REJECTED {self.file_key} ({self.rejection}): {self.error} -> {self.moved_to}"
        if self.skipped:
            where = f" (now {self.moved_to})" if self.moved_to else ""
            return f"SKIPPED  {self.file_key}: {self.skipped}{where}"
        if not self.success:
            return f"FAILED   {self.file_key}: {self.error}"
        v = self.metadata.get(f"{self.dataset}_validated", {})
        t = self.metadata.get(self.dataset, {})
        a = self.metadata.get(f"{self.dataset}_archived", {})
        rows = (
            f"{t.get('rows_inserted', 0)} inserted, {t.get('rows_updated', 0)} updated, "
            f"{t.get('rows_stale', 0)} kept back as stale"
        )
        if t.get("already_committed"):
            loaded = f"already committed in table version {t.get('table_version')}"
        elif self.batch_files > 1:
            loaded = (
                f"{v.get('rows_valid', 0)} valid, committed in table version "
                f"{t.get('table_version')} with the {self.batch_files} files its run loaded "
                f"({rows})"
            )
        else:
            loaded = f"{rows} (table version {t.get('table_version')})"
        rejected = v.get("rows_rejected", 0)
        where = f" -> {v.get('rejected_records_path')}" if rejected else ""
        checks = f"; FAILED CHECKS: {', '.join(self.failed_checks)}" if self.failed_checks else ""
        return (
            f"OK       {self.file_key}: {v.get('rows_read', 0)} rows read; {loaded}; "
            f"{rejected} rejected{where}; archived to {a.get('archived_to', '?')}{checks}"
        )

    def subject(self) -> str:
        # SNS subjects: at most 100 printable ASCII characters, no line breaks.
        text = f"[ecom-lakehouse] {self.status}: {self.file_key}"
        return text.encode("ascii", "replace").decode()[:100]

    def message(self, ui_url: str) -> str:
        lines = [self.summary(), "", f"File: raw/{self.file_key} (dataset {self.dataset})"]
        if self.run_id:
            lines.append(f"Run: {ui_url.rstrip('/')}/runs/{self.run_id} (job {self.job_name})")
        if not self.success:
            lines += [
                f"Failed asset: {self.failed_step or '?'}",
                f"Error: {self.error}",
                "",
                "What to do: read the error. A rejected file is under rejected/ with a "
                ".reason.json beside it: fix it and upload it to raw/ again. Otherwise fix the "
                "cause and re-execute the run from the link above (the load is idempotent).",
            ]
        elif self.failed_checks:
            lines.append(f"Failed checks: {', '.join(self.failed_checks)}")
        return "\n".join(lines)


@dataclass
class KpiReport:
    """What one refresh of a KPI table did: the line the CLI prints."""

    name: str
    success: bool
    metadata: dict[str, object] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    error: str = ""

    def summary(self) -> str:
        if not self.success:
            return f"FAILED   {self.name}: {self.error}"
        m = self.metadata
        failed = [name for name, passed in self.checks.items() if not passed]
        checks = f"; FAILED CHECKS: {', '.join(failed)}" if failed else ""
        return (
            f"KPI      {self.name}: {m.get('days_recomputed', 0)} day(s) recomputed; "
            f"{m.get('rows_inserted', 0)} rows inserted, {m.get('rows_updated', 0)} updated, "
            f"{m.get('rows_deleted', 0)} deleted{checks}"
        )


@dataclass
class MaintenanceLine:
    """What the maintenance of one table did: the line ``ecom-lakehouse maintain`` prints."""

    table: str
    success: bool
    metadata: dict[str, object] = field(default_factory=dict)  # empty: no table yet
    error: str = ""

    def summary(self) -> str:
        if not self.success:
            return f"FAILED   {self.table}: {self.error}"
        m = self.metadata
        if not m:
            return f"SKIPPED  {self.table}: no Delta table yet"
        return (
            f"OK       {self.table}: {m['files_before']} -> {m['files_after']} data files "
            f"({_size(m['bytes_before'])} -> {_size(m['bytes_after'])}; "
            f"at most {m['most_files_in_a_partition_after']} per partition), "
            f"{m['files_compacted']} compacted, {m['files_vacuumed']} vacuumed "
            f"(retention {m['vacuum_retention_hours']:g} h), checkpoint at version "
            f"{m['checkpoint_version']}, {m['log_files_removed']} log files removed; "
            f"{m['seconds']:.2f} s"
        )


def _size(size: object) -> str:
    value = float(str(size))
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
