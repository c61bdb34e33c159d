import math
from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest

from ecom_lakehouse.contracts import CONTRACTS
from ecom_lakehouse.core.read.readers import read_parts
from ecom_lakehouse.core.validate import validation
from ecom_lakehouse.core.validate.validation import (
    InvalidSchema,
    has_repeats,
    header_mapping,
    validate,
)
from ecom_lakehouse_tests.conftest import shared_file
from ecom_lakehouse_tests.files import ORDERS_HEADER, csv_bytes, order, xlsx_bytes

ORDERS = CONTRACTS["orders"]


def run(rows, header=ORDERS_HEADER, contract=ORDERS):
    return validate(contract, read_parts(csv_bytes([header, *rows]), "csv"), "orders/t.csv")


def reasons(result) -> dict[int, str]:
    return dict(
        zip(
            result.rejected.column("_source_row").to_pylist(),
            result.rejected.column("_reason").to_pylist(),
            strict=True,
        )
    )


def test_header_is_matched_ignoring_case_spaces_and_order_and_extras_are_reported():
    header = [" Total_Amount", "ORDER_ID ", "date", "order_num", "user_id", "order_timestamp", "x"]
    positions, extra = header_mapping(ORDERS, header)
    assert [header[p].strip().lower() for p in positions if p is not None] == list(
        ORDERS.column_names
    )
    assert extra == [("x", 6)]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (ORDERS_HEADER[:-1], r"missing columns \['date'\]"),
        ([*ORDERS_HEADER, "Date"], r"duplicated columns \['date'\]"),
        (["a", "b"], "missing columns"),
    ],
)
def test_a_wrong_header_is_an_invalid_schema(header, message):
    with pytest.raises(InvalidSchema, match=message):
        header_mapping(ORDERS, header)


def test_the_sheet_with_the_wrong_header_is_named():
    data = xlsx_bytes({"good": [ORDERS_HEADER, order(1)], "bad": [ORDERS_HEADER[:3], [1, 2, 3]]})
    with pytest.raises(InvalidSchema, match="sheet 'bad'"):
        validate(ORDERS, read_parts(data, "xlsx"), "orders/t.xlsx")


def test_good_rows_are_typed_utc_and_in_the_contract_schema():
    result = run([order(1, "2025-04-01T23:30:00", "229.5"), order(2, amount=" 7 ")])
    assert result.rejected.num_rows == 0
    assert result.valid.schema == ORDERS.arrow_schema
    first = result.valid.to_pylist()[0]
    assert first["order_timestamp"] == datetime(2025, 4, 1, 23, 30, tzinfo=UTC)
    assert first["date"] == date(2025, 4, 1)
    assert first["total_amount"] == Decimal("229.50")


def test_each_bad_row_gets_every_reason_and_keeps_its_raw_text():
    result = run(
        [
            order(1, amount="-3"),  # rule
            order(2, amount="abc"),  # type
            order("", amount="1"),  # required key
            order(4, "2025-04-01T10:00:00", date="2025-04-02"),  # date rule
            order(5, "1970-01-01T00:00:00"),  # timestamp out of range (and date matches)
            order(6, user_id="1.5"),  # an integer with a fraction is not silently rounded
            order(7, amount="0", user_id=""),  # two reasons at once
        ]
    )
    assert result.valid.num_rows == 0
    assert reasons(result) == {
        2: "rule total_amount_positive",
        3: "total_amount: not a valid decimal(12,2): abc",
        4: "order_id: required",
        5: "rule date_matches_order_timestamp",
        6: "rule order_timestamp_in_range",
        7: "user_id: not a valid bigint: 1.5",
        8: "user_id: required; rule total_amount_positive",
    }
    raw = result.rejected.to_pylist()[1]
    assert raw["total_amount"] == "abc"
    assert raw["_source_file"] == "orders/t.csv"
    assert result.rows_read == 7
    assert result.rejected_by_reason["rule total_amount_positive"] == 2


def test_duplicate_keys_keep_the_latest_timestamp_then_the_last_row():
    result = run(
        [
            order(1, "2025-04-01T12:00:00", 1),  # row 2: latest timestamp -> wins
            order(1, "2025-04-01T08:00:00", 2),  # row 3
            order(2, amount=3),  # row 4
            order(2, amount=4),  # row 5: same timestamp, later row -> wins
        ]
    )
    assert sorted((r["order_id"], r["total_amount"]) for r in result.valid.to_pylist()) == [
        (1, Decimal("1.00")),
        (2, Decimal("4.00")),
    ]
    assert reasons(result) == {
        3: "duplicate order_id: order_id 1 is superseded by row 2",
        4: "duplicate order_id: order_id 2 is superseded by row 5",
    }
    assert result.rejected_by_reason == {"duplicate order_id": 2}
    assert result.rows_read == result.valid.num_rows + result.rejected.num_rows


def test_an_exact_copy_of_a_row_is_rejected_as_one():
    result = run([order(1), order(2), order(1), order(1, amount=3)])
    assert reasons(result) == {
        2: "duplicate order_id: order_id 1 is superseded by row 5",
        4: "duplicate order_id: order_id 1 is superseded by row 5",
    }
    copies = run([order(1), order(2), order(1)])
    assert reasons(copies) == {2: "exact duplicate: the same values as row 4"}
    assert copies.rejected_by_reason == {"exact duplicate": 1}


def test_duplicates_across_sheets_and_check_batches_leave_the_winners_in_file_order(
    monkeypatch,
):
    monkeypatch.setattr(validation, "BATCH_ROWS", 2)  # every sheet its own batch
    data = xlsx_bytes(
        {
            "d1": [ORDERS_HEADER, order(1, amount=1), order(2, amount=2), order(3, amount=3)],
            "d2": [ORDERS_HEADER, order(2, amount=20), order(4, amount=4)],
            "d3": [ORDERS_HEADER, order(1, "2025-04-01T09:00:00", 10), order(5, amount=5)],
        }
    )
    result = validate(ORDERS, read_parts(data, "xlsx"), "orders/t.xlsx")
    assert [(r["order_id"], r["total_amount"]) for r in result.valid.to_pylist()] == [
        (1, Decimal("1.00")),
        (3, Decimal("3.00")),
        (2, Decimal("20.00")),
        (4, Decimal("4.00")),
        (5, Decimal("5.00")),
    ]
    assert reasons(result) == {
        3: "duplicate order_id: order_id 2 is superseded by d2 row 2",
        2: "duplicate order_id: order_id 1 is superseded by d1 row 2",
    }


def test_a_bad_row_never_displaces_a_good_duplicate():
    result = run([order(1, amount=5), order(1, amount=-1)])
    assert [r["total_amount"] for r in result.valid.to_pylist()] == [Decimal("5.00")]
    assert reasons(result) == {3: "rule total_amount_positive"}


def test_malformed_csv_rows_are_rejected_not_dropped():
    result = run([order(1), order(2)[:2]])
    assert result.valid.num_rows == 1
    assert "malformed row" in reasons(result)[3]
    assert result.rows_read == 2


def test_optional_columns_may_be_empty_but_not_wrong():
    items = CONTRACTS["order_items"]
    header = list(items.column_names)
    base = [1, 10, 7, "", 3, 1, 0, "2025-04-01T10:00:00", "2025-04-01"]
    bad = [2, 10, 7, "-1", 3, 1, 2, "2025-04-01T10:00:00", "2025-04-01"]
    result = run([base, bad], header=header, contract=items)
    assert result.valid.column("days_since_prior_order").to_pylist() == [None]
    assert reasons(result) == {
        3: "rule reordered_is_flag; rule days_since_prior_order_not_negative"
    }


def test_every_rule_is_valid_sql_over_the_typed_columns():
    for contract in CONTRACTS.values():
        con = duckdb.connect()
        for function in validation.RULE_FUNCTIONS:
            con.execute(f"CREATE MACRO {function}")
        con.register("t", pa.table({f.name: pa.nulls(0, f.type) for f in contract.arrow_schema}))
        for rule in contract.rules:
            con.execute(f"SELECT {rule.sql} FROM t").fetchall()


def test_to_date_is_the_utc_day_duckdb_casts():
    """The rules' ``to_date`` is DuckDB's CAST(ts AS DATE) in UTC, before 1970, at midnight,
    a microsecond before it, and for every few hours over three centuries."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for function in validation.RULE_FUNCTIONS:
        con.execute(f"CREATE MACRO {function}")
    (differ, rows) = con.execute(
        """SELECT count(*) FILTER (WHERE to_date(ts) IS DISTINCT FROM CAST(ts AS DATE)), count(*)
        FROM (SELECT TIMESTAMPTZ '1900-01-01 00:00:00+00' + to_microseconds(
                i * 10800000000 + (i % 3) - 1) AS ts FROM range(0, 900000) t(i)
              UNION ALL SELECT TIMESTAMPTZ '1969-12-31 23:59:59.999999+00'
              UNION ALL SELECT TIMESTAMPTZ '1970-01-01 00:00:00+00'
              UNION ALL SELECT TIMESTAMPTZ '2025-04-01 10:00:00+02'
              UNION ALL SELECT NULL::TIMESTAMPTZ)"""
    ).fetchone()
    assert rows == 900_004 and differ == 0


@pytest.mark.parametrize(
    ("dataset", "relative", "rows"),
    [
        ("products", "lab5/products.csv", 1000),
        ("orders", "lab5/orders_apr_2025.xlsx", 7500),
        ("order_items", "lab5/order_items_apr_2025.xlsx", 40803),
        ("order_items", "lab5-variants/order_items.shuffled-sheets.xlsx", 40803),
        ("orders", "lab5-variants/orders_apr_2025.clean-zip.xlsx", 7500),
    ],
)
def test_the_real_files_validate_without_a_reject(dataset, relative, rows):
    path = shared_file(relative)
    result = validate(CONTRACTS[dataset], read_parts(path.read_bytes(), path.suffix[1:]), relative)
    assert (result.valid.num_rows, result.rejected.num_rows) == (rows, 0)


def run_xlsx(sheets: dict[str, list[list]]):
    data = xlsx_bytes({name: [ORDERS_HEADER, *rows] for name, rows in sheets.items()})
    return validate(ORDERS, read_parts(data, "xlsx"), "orders/t.xlsx")


def test_number_cells_follow_the_same_rules_as_text():
    # the same rows as numbers in a workbook and as text in a CSV give the same answer
    rows = [
        order(1, amount=229.5),
        order(2, amount=-3),  # rule
        order(3, user_id=1.5),  # a fraction is not rounded into an id
        order(4.0, amount=7, date="2025-04-02"),  # a whole number as a float is an id
    ]
    from_cells = run_xlsx({"day": rows})
    from_text = run(rows)
    assert from_cells.valid == from_text.valid
    assert (
        reasons(from_cells)
        == reasons(from_text)
        == {
            3: "rule total_amount_positive",
            4: "user_id: not a valid bigint: 1.5",
            5: "rule date_matches_order_timestamp",
        }
    )
    # a rejected number cell is written as the sheet shows it
    assert [r["order_id"] for r in from_cells.rejected.to_pylist()] == ["2", "3", "4"]


def test_sheets_that_type_a_column_differently_are_validated_together():
    result = run_xlsx({"numbers": [order(1)], "text": [order("x"), order(2)]})
    assert result.valid.column("order_id").to_pylist() == [1, 2]
    assert reasons(result) == {2: "order_id: not a valid bigint: x"}


def test_date_cells_are_utc_timestamps():
    ts = datetime(2025, 4, 1, 23, 30)
    result = run_xlsx({"day": [order(1, order_timestamp=ts, date=date(2025, 4, 1))]})
    (row,) = result.valid.to_pylist()
    assert row["order_timestamp"] == ts.replace(tzinfo=UTC)
    assert row["date"] == date(2025, 4, 1)


def test_large_integer_ids_keep_every_digit():
    result = run([order("9007199254740993")])
    assert result.valid.column("order_id").to_pylist() == [9007199254740993]


@pytest.mark.parametrize(
    ("values", "type_", "repeats"),
    [
        ([3, None, 1, None, 2], pa.int64(), False),  # nulls are not keys: they never repeat
        ([3, 1, 2, 1], pa.int32(), True),
        ([], pa.int64(), False),
        (["a", None, "b"], pa.string(), False),
        (["a", "b", "a"], pa.string(), True),
    ],
)
def test_repeated_keys_are_found_in_any_chunking(values, type_, repeats):
    whole = pa.chunked_array([pa.array(values, type_)])
    split = pa.chunked_array([pa.array(values[:2], type_), pa.array(values[2:], type_)])
    assert has_repeats(whole) is repeats
    assert has_repeats(split) is repeats


def test_integer_and_date_text_arrow_types_whole_gives_what_the_sql_would():
    """Text columns of plain integers and dates are typed by Arrow before the SQL (faster);
    the rows, the rejects and the raw text a rejected row shows are as the SQL alone makes
    them, and a column with any other value is left to the SQL's own rules."""
    plain = [order(7, amount=-1), order(8)]  # a rule breaks row 2: its text is kept as it was
    plain[0][1] = "007"
    raw = pa.table({f"{validation.RAW_PREFIX}order_id": ["1", "2"]})
    assert validation.PRETYPED + "order_id" in validation.pretyped(raw, ORDERS).column_names
    fraction = pa.table({f"{validation.RAW_PREFIX}order_id": ["1", "2.5"]})
    assert validation.pretyped(fraction, ORDERS).column_names == fraction.column_names
    result = run(plain)
    assert result.valid.column("order_id").to_pylist() == [8]
    (text,) = result.rejected.column("order_id").to_pylist()
    assert text == "007"  # the file's text, not the typed value
    mixed = run([order(1), [*order(2)[:1], "2.5", *order(2)[2:]]])
    assert reasons(mixed) == {3: "order_id: not a valid bigint: 2.5"}


# Text as producers write it, per contract type: plain literals Arrow casts, and layouts only
# DuckDB reads (or nobody does). Wherever Arrow casts a value, DuckDB must read it the same.
LITERALS = {
    "bigint": ["42", "-0", "007", "+42", "1_000", "42.0", "9223372036854775808", "", " 1"],
    "int": ["42", "2147483648", "-2147483648", "1e3"],
    "double": ["1.5", "1e3", "NaN", "inf", "-0", "1,5", " 2", "0x10", "1_000", ".5"],
    "decimal(12,2)": ["10.50", "10.5", "10", "10.555", "-0.01", "+5.00", "1e3", "1E-2", "3.",
                      ".5", "9999999999.99", "99999999999.99", "1,5", "NaN", " 3.10"],
    "boolean": ["true", "false", "True", "TRUE", "1", "0", "yes", "t", " true"],
    "date": ["2025-04-01", "2025-4-1", "20250401", "2025-04-01 00:00:00", "0001-01-01"],
    "timestamp": ["2025-04-01 00:00:00", "2025-04-01T00:00:00", "2025-04-01 00:00:00Z",
                  "2025-04-01T10:00:00+02:00", "2025-04-01 10:00:00+0200",
                  "2025-04-01 10:00:00+02", "2025-04-01", "2025-04-01 00:00:00.123456",
                  "2025-04-01 00:00:00.1234567", "2025-04-01 24:00:00", "2025-02-30 00:00:00",
                  "2025-04-01 00:00", "1969-12-31 23:59:59.999", "2025-04-01T00:00:00.5Z"],
}  # fmt: skip


@pytest.mark.parametrize("type_", sorted(LITERALS))
def test_arrow_casts_only_what_the_sql_reads_the_same(type_):
    from ecom_lakehouse.contracts.model import LOGICAL_TYPES

    sql_type, arrow_type, _ = LOGICAL_TYPES[type_]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cast = 0
    for text in LITERALS[type_]:
        typed = validation.arrow_cast(pa.chunked_array([[text]], pa.string()), arrow_type)
        if typed is None:
            continue
        cast += 1
        (sql,) = con.execute(
            f"SELECT TRY_CAST(NULLIF(trim(?), '') AS {sql_type})", [text]
        ).fetchone()
        assert typed.type == arrow_type
        value = typed[0].as_py()
        assert value == sql or (math.isnan(value) and math.isnan(sql)), (text, value, sql)
    assert cast, "Arrow casts none of the plain literals"


@pytest.mark.parametrize("ts", ["2025-04-01T10:00:00+02:00", "2025-04-01 08:00:00"])
def test_a_file_typed_by_arrow_validates_as_the_sql_alone_does(ts, monkeypatch):
    """Every column of the file typed by Arrow (timestamps with a zone or without, prices):
    the valid rows, the rejected rows' text and their reasons are what the SQL alone makes."""
    rows = [order(1, ts=ts), order(2, ts=ts, amount=-1), order(3, ts=ts, amount="10.25")]
    rows.append(order(3, ts=ts, amount="11"))  # a newer version of key 3 in the same file
    typed = run(rows)
    raw = pa.table({f"{validation.RAW_PREFIX}order_timestamp": [ts]})
    assert validation.PRETYPED + "order_timestamp" in validation.pretyped(raw, ORDERS).column_names
    monkeypatch.setattr(validation, "pretyped", lambda raw, contract: raw)
    by_sql = run(rows)
    assert typed.valid.equals(by_sql.valid)
    assert typed.rejected.equals(by_sql.rejected)
    assert typed.valid.column("order_timestamp").to_pylist()[0] == datetime(
        2025, 4, 1, 8, tzinfo=UTC
    )
    assert set(reasons(typed).values()) >= {"rule total_amount_positive"}
