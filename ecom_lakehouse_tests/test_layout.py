"""The package's shape: the core and the contracts run without Dagster (the Spark job ships
them), and the definitions change only when the graph does (a snapshot)."""

import ast
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

import ecom_lakehouse.core
from ecom_lakehouse.contracts import CONTRACTS, Column, DatasetContract
from ecom_lakehouse.definitions import build_defs
from ecom_lakehouse.names import NameCollision, check_unique

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def test_core_and_contracts_import_without_dagster():
    core = ecom_lakehouse.core
    modules = [m.name for m in pkgutil.walk_packages(core.__path__, prefix=f"{core.__name__}.")]
    assert {"ecom_lakehouse.core.pipeline", "ecom_lakehouse.core.tables.delta"} <= set(modules)
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in ["ecom_lakehouse.contracts", *modules])
        + "print(sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster.')))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == "[]"


def test_importing_the_definitions_module_builds_nothing():
    code = (
        "import ecom_lakehouse.definitions as d, dagster as dg\n"
        "print(isinstance(d.defs, dg.Definitions))"
    )
    env = {**os.environ, "LAKEHOUSE_ENV": "no-such-profile"}  # building would fail on it
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert out.strip() == "False"


def condition(cond: dg.AutomationCondition | None) -> str | None:
    """An automation condition as its labelled parts: ``AND(any_deps_updated, NOT(...))``."""
    if cond is None:
        return None
    if cond.get_label():
        return cond.get_label()
    return f"{cond.name}({', '.join(condition(c) or '' for c in cond.children)})"


def describe(defs: dg.Definitions) -> dict:
    """What the graph is: assets (group, deps, partitions, pool, kinds, automation), checks,
    jobs, sensors and schedules, by name."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitions": getattr(partitions, "name", None) or (partitions and str(partitions)),
            "pools": sorted(node.pools or []),
            "kinds": sorted(node.kinds),
            "automation": condition(node.automation_condition),
            "checks": sorted(k.name for k in node.check_keys),
        }
    repo = defs.get_repository_def()
    jobs = {
        job.name: sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys)
        for job in repo.get_all_jobs()
        if not job.name.startswith("__")
    }
    sensors = {
        s.name: {
            "default_status": s.default_status.value,
            "minimum_interval_seconds": s.minimum_interval_seconds,
            "jobs": sorted(t.job_name for t in s.targets),
        }
        for s in repo.sensor_defs
    }
    schedules = {
        s.name: {
            "cron": s.cron_schedule,
            "job": s.job_name,
            "default_status": s.default_status.value,
        }
        for s in repo.schedule_defs
    }
    return {"assets": assets, "jobs": jobs, "sensors": sensors, "schedules": schedules}


def test_the_definitions_match_their_snapshot(tmp_path):
    found = describe(build_defs({"LAKEHOUSE_URI": str(tmp_path)}))
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")
    # On a change of the graph: review it, then UPDATE_SNAPSHOTS=1 pytest -k snapshot
    assert found == json.loads(SNAPSHOT.read_text())


def test_two_datasets_cannot_make_the_same_name():
    orders = CONTRACTS["orders"]
    clash = DatasetContract(
        name="orders_validated",  # its table's asset key is orders' validated asset
        raw_folder="elsewhere",
        description="",
        columns=(Column("id", "bigint"),),
        primary_key="id",
    )
    try:
        check_unique([orders, clash])
    except NameCollision as exc:
        assert "orders_validated" in str(exc)
    else:
        raise AssertionError("the collision was not refused")
    check_unique(CONTRACTS.values())


def test_no_function_is_over_80_lines_and_no_assert_steers_the_package():
    """Control flow that vanishes under ``python -O`` is none; a function a newcomer reads in
    one screen or two."""
    package = Path(ecom_lakehouse.core.__file__).parents[1]
    long, asserts = [], []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{path.relative_to(package.parent)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.end_lineno and node.end_lineno - node.lineno + 1 > 80:
                    long.append(f"{where} {node.name}")
            elif isinstance(node, ast.Assert):
                asserts.append(where)
    assert long == [] and asserts == []
