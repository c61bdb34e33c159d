"""The transaction stream: one small JSON file per transaction (or a few), written every few
minutes by a generator under ``raw/transactions/YYYY/MM/DD/HH/``.

The calendar columns are derived from ``timestamp`` in UTC and never read from a file (a file's
``hour`` is a column the contract does not know).
"""

from datetime import timedelta

from ecom_lakehouse.contracts.model import Column, DatasetContract, Rule


def _calendar(name: str, sql: str, what: str) -> Column:
    return Column(name, "int", description=f"The {what} of the transaction (UTC).", derived=sql)


TRANSACTIONS = DatasetContract(
    name="transactions",
    raw_folder="transactions",
    freshness=timedelta(minutes=15),
    description=(
        "Sales transactions from the stream: one row per transaction, partitioned by the UTC "
        "date it happened."
    ),
    columns=(
        Column("transaction_id", "string", description="Transaction identifier (key)."),
        Column("timestamp", "timestamp", description="When the transaction happened (UTC)."),
        Column("customer_id", "string", description="Customer identifier."),
        Column("product_id", "string", description="Product identifier."),
        Column("product_name", "string", description="Product name."),
        Column("category", "string", description="Product category."),
        Column("quantity", "int", description="Units bought."),
        Column("price", "decimal(12,2)", description="Unit price."),
        Column("total_amount", "decimal(12,2)", description="quantity x price."),
        _calendar("year", "year(timestamp)", "year"),
        _calendar("month", "month(timestamp)", "month (1-12)"),
        _calendar("day", "day(timestamp)", "day of the month"),
        _calendar("hour", "hour(timestamp)", "hour (0-23)"),
        _calendar("day_of_week", "isodow(timestamp) - 1", "day of the week (0 = Monday)"),
        Column(
            "transaction_date",
            "date",
            description="The UTC date of the transaction; the partition column.",
            derived="to_date(timestamp)",
        ),
    ),
    primary_key="transaction_id",
    sequence_by=("timestamp",),
    partition_by="transaction_date",
    formats=("jsonl",),
    rules=(
        Rule("quantity_at_least_one", "quantity >= 1"),
        Rule("price_not_negative", "price >= 0"),
        # both are exact decimals to the cent, so "to the cent" is equality
        Rule("total_amount_is_quantity_times_price", "total_amount = quantity * price"),
        Rule(
            "timestamp_in_range",
            "timestamp BETWEEN TIMESTAMP '2000-01-01 00:00:00' AND now() + INTERVAL 1 DAY",
        ),
    ),
)

# The family (one dataset).
DATASETS = (TRANSACTIONS,)
