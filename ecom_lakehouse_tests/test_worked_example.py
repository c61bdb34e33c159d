"""docs/datasets.md's worked example, run as written: a family that is not among the shipped
ones (a composite key, no partition column, no freshness, a foreign key to the other table of
the family), loaded through the real definitions on a folder and on S3, then delivered again
with changed values for the same keys: updated, no new rows, one row per key."""

import re
import shlex
from pathlib import Path
from types import SimpleNamespace

from ecom_lakehouse.contracts import DatasetContract, registered
from ecom_lakehouse.runner.ingest import ingest
from ecom_lakehouse_tests.conftest import Stack, land, query

DOC = (Path(__file__).resolve().parents[1] / "docs" / "datasets.md").read_text()


def example_blocks(kind: str) -> list[tuple[str, str]]:
    """The doc's example blocks of a kind: (what the marker says after the kind, content)."""
    pattern = rf"<!-- example: {kind}((?: [^>]*?)?) -->\n```\w+\n(.*?)```"
    return [(arg.strip(), body) for arg, body in re.findall(pattern, DOC, flags=re.S)]


def family() -> tuple[DatasetContract, ...]:
    ((_, source),) = example_blocks("contract")
    module = SimpleNamespace()
    exec(compile(source, "docs/datasets.md (contracts/retail.py)", "exec"), module.__dict__)
    return tuple(module.DATASETS)


def queries() -> list[str]:
    ((_, block),) = example_blocks("queries")
    commands = re.split(r"\n(?=\.venv/bin/ecom-lakehouse)", block.strip())
    return [shlex.split(command)[2] for command in commands]


def deliver(stack: Stack, path: str, content: str) -> None:
    _, folder, name = path.split("/", 2)
    land(stack.lake, folder, content.encode(), name)


def test_the_worked_example_runs_as_the_docs_say(stack, instance):
    datasets = family()
    assert [d.name for d in datasets] == ["retail_products", "retail_invoice_lines"]
    lines = datasets[1]
    assert lines.key_columns == ("invoice_no", "stock_code")
    assert (lines.partition_by, lines.freshness) == (None, None)
    files = example_blocks("file")
    *first, corrected = files
    with registered(datasets):
        defs = stack.defs
        for path, content in first:
            deliver(stack, path, content)
        loaded = {r.dataset: r for r in ingest(instance, defs)}
        assert {name: r.status for name, r in loaded.items()} == {
            "retail_products": "OK",
            "retail_invoice_lines": "OK",
        }
        validated = loaded["retail_invoice_lines"].metadata["retail_invoice_lines_validated"]
        assert validated["rejected_by_reason"] == '{"rule quantity_not_zero": 1}'
        assert set(loaded["retail_invoice_lines"].checks) == {
            "invoice_no_stock_code_unique_and_not_null",
            "stock_code_references_retail_products",
            "row_count_reconciles",
        }
        assert query(stack, "SELECT count(*) FROM retail_invoice_lines") == [(3,)]

        deliver(stack, *corrected)  # the same day again, corrected
        (again,) = ingest(instance, defs)
        table = again.metadata["retail_invoice_lines"]
        assert (again.status, table["rows_inserted"], table["rows_updated"]) == ("OK", 0, 3)
        assert query(
            stack,
            "SELECT count(*), count(DISTINCT (invoice_no, stock_code)) FROM retail_invoice_lines",
        ) == [(3, 3)]
        first_query, revenue = (query(stack, sql) for sql in queries())
    assert first_query == [
        ("536365", "71053", 6),
        ("536365", "85123A", 12),
        ("536366", "84406B", 8),
    ]
    assert revenue[0][0] == "WHITE HANGING HEART T-LIGHT HOLDER"
