"""``ecom-lakehouse``: ingest what is in raw/, query the catalog, generate demo files."""

from __future__ import annotations

import csv
import logging
import os
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import click

from ecom_lakehouse.resources.settings import debug, lake_from_env
from ecom_lakehouse.runner.reports import FileReport, KpiReport


class UnexpectedError(click.ClickException):
    exit_code = 2


class _Commands(click.Group):
    """Turns an unexpected error into one clear line instead of a traceback (``-v`` or
    ECOM_LAKEHOUSE_DEBUG=1 shows the traceback)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise  # a closed pipe (`status | head -3`): click stops quietly
        except Exception as exc:
            if debug() or ctx.meta.get(VERBOSE):
                raise
            lines = str(exc).strip().splitlines() or [""]
            raise UnexpectedError(
                f"{type(exc).__name__}: {lines[0]} (-v shows the traceback)"
            ) from None


VERBOSE = "ecom_lakehouse.verbose"
# Without -v: the per-file notifications (the CLI prints its own lines) and the readers' notes
# on cell types (a cell they cannot type is validated as text and rejected with a reason).
QUIET_LOGGERS = ("ecom_lakehouse.notify", "fastexcel")


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The e-commerce lakehouse. The lake is LAKEHOUSE_URI (default: ./.lakehouse)."""


def run() -> None:
    """The console script: the commands, then an exit that skips tearing down the interpreter.
    Once a command is done everything it wrote is written and closed (files and connections by
    their context managers); Python's clean-up of dagster's thousands of modules and objects
    after that took ~0.5 s of every command (a third of ``ingest``'s on a small file)."""
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
        if exit_.code is not None and not isinstance(exit_.code, int):
            print(exit_.code, file=sys.stderr)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@main.command()
@click.option(
    "-v", "--verbose", is_flag=True, help="Show Dagster's event log and errors' tracebacks."
)
@click.pass_context
def ingest(ctx: click.Context, verbose: bool) -> None:
    """Process every file now in raw/ through the Dagster definitions, in this process.

    Prints a line per file (loaded, rejected with its reason, or failed) and a summary. Exits
    1 if a file was rejected or failed (it needs a person), 0 when every file loaded.
    """
    from ecom_lakehouse.definitions import build_defs
    from ecom_lakehouse.runner.ingest import ingest as run_ingest
    from ecom_lakehouse.runner.session import instance_for_cli

    ctx.meta[VERBOSE] = verbose
    if not verbose:  # the lines below say it all; the log notifier would say it twice
        for logger in QUIET_LOGGERS:
            logging.getLogger(logger).setLevel(logging.CRITICAL)
    lake = lake_from_env()
    click.echo(f"lake: {lake.uri}")
    kpis: list[KpiReport] = []
    with instance_for_cli() as instance:
        reports = run_ingest(instance, build_defs(), verbose=verbose, kpi_reports=kpis)
    if not reports:
        click.echo("nothing to do: raw/ has no files to process")
    left = [
        f"LEFT     {key}: not in a dataset folder ({folders()}); left where it is"
        for key in files_left_in_raw()
    ]
    sys.exit(say_reports(reports, kpis, verbose, left))


def say_reports(
    reports: list[FileReport], kpis: list[KpiReport], verbose: bool, also: list[str]
) -> int:
    """A line per file and KPI refresh, then ``also``, then a summary; the exit code: 1 if a
    file was rejected or failed, or a KPI refresh failed (it needs a person), else 0."""
    for report in reports:
        click.echo(report.summary())
        if verbose and report.traceback:
            click.echo(report.traceback)
    for kpi in kpis:
        click.echo(kpi.summary())
    for line in also:
        click.echo(line)
    rejected = sum(bool(r.rejection) for r in reports)
    failed = sum(not r.success for r in reports) - rejected
    skipped = sum(bool(r.skipped) for r in reports)
    kpis_failed = sum(not k.success for k in kpis)
    if reports:
        loaded = len(reports) - rejected - failed - skipped
        said = f"; {kpis_failed} KPI refresh(es) failed" if kpis_failed else ""
        said = (f", {skipped} skipped (another writer took them)" if skipped else "") + said
        click.echo(f"{loaded} file(s) loaded, {rejected} rejected, {failed} failed{said}")
    return 1 if rejected or failed or kpis_failed else 0


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option(
    "-v", "--verbose", is_flag=True, help="Show Dagster's event log and errors' tracebacks."
)
@click.pass_context
def reprocess(ctx: click.Context, files: tuple[str, ...], verbose: bool) -> None:
    """Process FILES again (keys under raw/, e.g. orders/orders_apr_2025.xlsx), from wherever
    each is now: raw/, archived/ or rejected/ (after a contract fix, a rejected file loads).

    A new delivery of each upload: rows are merged again, newest wins, and the file ends in
    archived/ (or rejected/, with its reason). One run per dataset and landing day. Exits as
    ingest does."""
    from ecom_lakehouse.contracts import CONTRACTS
    from ecom_lakehouse.definitions import build_defs
    from ecom_lakehouse.runner.reprocess import NotFound
    from ecom_lakehouse.runner.reprocess import reprocess as run_reprocess
    from ecom_lakehouse.runner.session import instance_for_cli

    ctx.meta[VERBOSE] = verbose
    if not verbose:
        for logger in QUIET_LOGGERS:
            logging.getLogger(logger).setLevel(logging.CRITICAL)
    click.echo(f"lake: {lake_from_env().uri}")
    keys = [f.removeprefix("raw/") for f in files]
    kpis: list[KpiReport] = []
    with instance_for_cli() as instance:
        try:
            reports = run_reprocess(
                instance, build_defs(), keys, CONTRACTS, verbose=verbose, kpi_reports=kpis
            )
        except NotFound as missing:
            raise click.ClickException(str(missing)) from None
    sys.exit(say_reports(reports, kpis, verbose, []))


def files_left_in_raw() -> list[str]:
    """The files in raw/ that belong to no dataset (the sensor leaves them alone)."""
    from ecom_lakehouse.contracts import CONTRACTS
    from ecom_lakehouse.core.lake import layout
    from ecom_lakehouse.core.lake.landing import RawCursor, scan

    listing = lake_from_env().list(layout.RAW)
    return sorted(scan(listing, RawCursor(), timedelta(0), list(CONTRACTS.values())).unroutable)


def folders() -> str:
    from ecom_lakehouse.contracts import CONTRACTS

    return ", ".join(c.raw_folder for c in CONTRACTS.values())


@main.command()
@click.option(
    "--table",
    "tables",
    multiple=True,
    help="A table to maintain (repeatable; default: every table).",
)
@click.option(
    "--retention-hours",
    type=click.IntRange(min=0),
    default=None,
    help="VACUUM's retention for this run instead of the table's "
    "delta.deletedFileRetentionDuration (7 days by default), even if shorter: files older "
    "versions need are deleted, so time travel and slow readers lose them.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show Dagster's event log.")
@click.pass_context
def maintain(
    ctx: click.Context, tables: tuple[str, ...], retention_hours: int | None, verbose: bool
) -> None:
    """Compact, checkpoint and VACUUM the Delta tables, in this process (the same job the
    nightly schedule runs). Prints a line per table; exits 1 if one failed."""
    from ecom_lakehouse.contracts import table_specs
    from ecom_lakehouse.definitions import build_defs
    from ecom_lakehouse.runner.maintain import maintain as run_maintain
    from ecom_lakehouse.runner.session import instance_for_cli

    ctx.meta[VERBOSE] = verbose
    specs = {spec.name: spec for spec in table_specs()}
    unknown = [t for t in tables if t not in specs]
    if unknown:
        raise click.UsageError(f"unknown table(s) {unknown}: the tables are {', '.join(specs)}")
    click.echo(f"lake: {lake_from_env().uri}")
    chosen = [specs[t] for t in tables] if tables else list(specs.values())
    with instance_for_cli() as instance:
        lines = run_maintain(
            instance, build_defs(), chosen, retention_hours=retention_hours, verbose=verbose
        )
    for line in lines:
        click.echo(line.summary())
    sys.exit(0 if all(line.success for line in lines) else 1)


@main.command()
def status() -> None:
    """Per table: rows, last load, files waiting in raw/ and the oldest one's age (the lag),
    files and rows rejected in the last day, and its checks' latest outcomes (recorded in the
    Dagster instance of DAGSTER_HOME; without it there are none to show)."""
    from datetime import UTC

    from ecom_lakehouse.contracts import CONTRACTS, table_specs
    from ecom_lakehouse.definitions import build_defs
    from ecom_lakehouse.names import FRESHNESS_CHECK
    from ecom_lakehouse.runner.checks import latest_checks
    from ecom_lakehouse.runner.session import instance_for_cli
    from ecom_lakehouse.runner.status import freshness_now, table_status

    lake = lake_from_env()
    now = datetime.now(UTC)
    click.echo(f"lake: {lake.uri}")
    with instance_for_cli() as instance:
        checks = latest_checks(instance, build_defs())
    for spec in table_specs():
        state = table_status(lake, spec, now)
        state.checks = checks.get(spec.name, {})
        freshness = getattr(CONTRACTS.get(spec.name), "freshness", None)
        if freshness is not None and FRESHNESS_CHECK in state.checks:
            state.checks[FRESHNESS_CHECK] = freshness_now(state, freshness, now)
        click.echo(state.summary(now))


@main.command()
@click.argument("sql")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True
)
def query(sql: str, fmt: str) -> None:
    """Run SQL against the catalog (tables products, orders, order_items; rejected rows as
    rejected_<dataset>)."""
    import duckdb

    from ecom_lakehouse.core.sql.duckdb_catalog import CatalogMissing
    from ecom_lakehouse.resources import build_resources
    from ecom_lakehouse.resources.catalogs import Catalog

    catalog = build_resources()["catalog"]
    if not isinstance(catalog, Catalog):
        raise TypeError(f"the catalog resource is a {type(catalog).__name__}, not a Catalog")
    try:
        con = catalog.connect_for_query(lake_from_env())
    except CatalogMissing as exc:
        raise click.ClickException(str(exc)) from None
    try:
        relation = con.sql(sql)
        if relation is None:
            return
        if fmt == "csv":
            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(relation.columns)
            while rows := relation.fetchmany(10_000):
                writer.writerows(rows)
        else:
            relation.show(max_rows=200, max_width=200)
    except duckdb.Error as exc:
        raise click.ClickException(str(exc).strip()) from None
    finally:
        con.close()


@main.command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--orders",
    type=click.IntRange(min=1),
    required=True,
    help="Number of orders (of transactions, one file each, for --family transactions).",
)
@click.option(
    "--family",
    type=click.Choice(["ecommerce", "thelook", "transactions"]),
    default="ecommerce",
    show_default=True,
    help="Which datasets: the seed formats (workbooks), TheLook's exports (CSV) or the "
    "transaction stream (small JSON files).",
)
@click.option("--products", type=click.IntRange(min=1), default=None, help="Number of products.")
@click.option("--days", type=click.IntRange(min=1), default=15, show_default=True)
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default="2025-04-01", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--id-offset",
    type=click.IntRange(min=0),
    default=None,
    help="Added to every key. Default: a block of keys of its own for each --seed and --start, "
    "so new data never overwrites what was generated before; give the offset of earlier data "
    "to generate new versions of its rows.",
)
@click.option(
    "--bad-rows",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Order lines that break a rule of the contract (rejected with a reason; ecommerce).",
)
def generate(
    out_dir: Path,
    *,
    orders: int,
    family: str,
    products: int | None,
    days: int,
    start: datetime,
    seed: int,
    id_offset: int | None,
    bad_rows: int,
) -> None:
    """Write synthetic files of a dataset family into OUT_DIR, laid out like raw/."""
    from ecom_lakehouse.generators import (
        GeneratedFiles,
        ecommerce,
        keys_from,
        thelook,
        transactions,
    )

    generators: dict[str, Callable[..., GeneratedFiles]] = {
        "ecommerce": ecommerce.generate,
        "thelook": thelook.generate,
        "transactions": transactions.generate,
    }
    make = generators[family]
    if products and family == "transactions":
        raise click.UsageError("--products does not apply to --family transactions")
    if bad_rows and family != "ecommerce":
        raise click.UsageError("--bad-rows applies to --family ecommerce only")
    first_day = date.fromisoformat(start.date().isoformat())
    if id_offset is None:
        try:
            id_offset = keys_from(seed, first_day)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    extra: dict[str, int] = {"products": products} if products else {}
    if bad_rows:
        extra["bad_rows"] = bad_rows
    files = make(
        out_dir, orders=orders, days=days, start=first_day, seed=seed, id_offset=id_offset, **extra
    )
    for dataset, path in files.paths.items():
        click.echo(f"{path}: {files.rows[dataset]} rows")
    click.echo(f"keys from {id_offset + 1} (--id-offset {id_offset})")


@main.command("monitoring-template")
def monitoring_template() -> None:
    """Print the monitoring stack (CloudWatch dashboard and alarms) the contracts make.

    Written to deploy/cloudformation/monitoring.yaml; run it again after changing a contract's
    freshness or adding a dataset (a test fails until the file matches).
    """
    from ecom_lakehouse.contracts import CONTRACTS
    from ecom_lakehouse.resources.cloudwatch import monitoring_template_yaml

    click.echo(monitoring_template_yaml(CONTRACTS.values()), nl=False)


@main.command("package-spark")
def package_spark() -> None:
    """Build the Spark job's package and upload it under scripts/<version>/ in the lake.

    The version is a hash of the content: a running job never sees a file change. Prints the
    URI to set as LAKEHOUSE_SPARK_SCRIPTS_URI (and as the Glue job's script location).
    """
    from ecom_lakehouse.spark import package

    lake = lake_from_env()
    built = package.build()
    written = package.upload(lake, built)
    for key in written:
        click.echo(f"uploaded {lake.url(key)}", err=True)
    if not written:
        click.echo(f"version {built.version} is already uploaded", err=True)
    click.echo(built.uri(lake))
