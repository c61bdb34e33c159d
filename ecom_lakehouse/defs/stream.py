"""The transactions generator as a Dagster schedule: each tick requests a run that writes the
stream's next files into ``raw/transactions/``, where the raw sensor picks them up like any
landed file. The schedule only requests; the run writes (no side effect in a tick)."""

from datetime import datetime

import dagster as dg
from pydantic import Field

from ecom_lakehouse.core.lake import layout
from ecom_lakehouse.defs.schedules import schedule_timing
from ecom_lakehouse.generators.transactions import tick_files
from ecom_lakehouse.names import GENERATOR_JOB, GENERATOR_SCHEDULE
from ecom_lakehouse.resources.lake import LakeResource
from ecom_lakehouse.resources.settings import GeneratorSettings


class TransactionsTick(dg.Config):
    until: str = Field(description="The tick's time (ISO 8601); transactions happen before it.")
    files: int = Field(default=1, ge=1, description="Files to write.")
    transactions_per_file: int = Field(default=1, ge=1, description="Transactions per file.")


@dg.op(description="Write one tick's transaction files into raw/transactions/.")
def write_transactions(
    context: dg.OpExecutionContext, config: TransactionsTick, lake: LakeResource
) -> None:
    target = lake.lake()
    keys = []
    for key, body in tick_files(
        datetime.fromisoformat(config.until),
        files=config.files,
        per_file=config.transactions_per_file,
    ):
        target.write(layout.raw_key(key), body)
        keys.append(key)
    context.log.info(f"wrote {len(keys)} file(s): {', '.join(keys)}")


@dg.job(name=GENERATOR_JOB, description="The transaction stream's generator: one tick's files.")
def transactions_generator() -> None:
    write_transactions()


def generator_definitions(settings: GeneratorSettings) -> dg.Definitions:
    @dg.schedule(
        name=GENERATOR_SCHEDULE,
        job=transactions_generator,
        **schedule_timing(settings),
        description=(
            "Writes synthetic transactions as small JSON files under "
            "raw/transactions/YYYY/MM/DD/HH/ (LAKEHOUSE_TRANSACTIONS_CRON, _FILES_PER_TICK, "
            "_PER_FILE)."
        ),
    )
    def schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        until = context.scheduled_execution_time
        tick = TransactionsTick(
            until=until.isoformat(),
            files=settings.files_per_tick,
            transactions_per_file=settings.transactions_per_file,
        )
        return dg.RunRequest(
            run_key=until.isoformat(),  # one run per tick, however often it is evaluated
            run_config=dg.RunConfig(ops={"write_transactions": tick}),
        )

    return dg.Definitions(jobs=[transactions_generator], schedules=[schedule])
