"""What follows a load is one rule: the assets the daemon's automation requests after a table
changes are those ``ecom-lakehouse ingest`` refreshes after loading it (``follows_load``)."""

import dagster as dg
import pytest

from ecom_lakehouse.contracts import CONTRACTS, KPIS
from ecom_lakehouse.definitions import build_defs
from ecom_lakehouse.defs.automation import follows_load
from ecom_lakehouse.names import catalog_key, kpi_names, names_of


@pytest.fixture(scope="module")
def defs(tmp_path_factory) -> dg.Definitions:
    return build_defs({"LAKEHOUSE_URI": str(tmp_path_factory.mktemp("lake"))})


def daemon_requests(defs: dg.Definitions, changed: dg.AssetKey, partition: str | None) -> set:
    """Every asset the automation requests, tick after tick, once ``changed`` is materialized
    (each request materialized in turn, as its run would), until it requests nothing more."""
    requested: set[dg.AssetKey] = set()
    with dg.DagsterInstance.ephemeral() as instance:
        cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
        instance.report_runless_asset_event(dg.AssetMaterialization(changed, partition=partition))
        while True:
            result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
            cursor = result.cursor
            new = {r.key for r in result.results if r.true_subset.size} - requested
            if not new:
                return requested
            requested |= new
            for key in new:
                instance.report_runless_asset_event(dg.AssetMaterialization(key))


@pytest.mark.parametrize("dataset", sorted(CONTRACTS))
def test_the_cli_refreshes_after_a_load_what_the_daemon_would(defs, dataset):
    table = names_of(dataset).table
    following = follows_load(defs, [table])
    assert set(following) == daemon_requests(defs, table, partition="2025-04-01")
    feeding = [k for k in KPIS.values() if any(s.dataset == dataset for s in k.inputs)]
    assert {kpi_names(k).table for k in feeding} <= set(following)  # the KPI tables it feeds
    assert catalog_key(CONTRACTS[dataset]) in following  # and its own catalog entry
    order = {key: i for i, key in enumerate(following)}
    for kpi in feeding:  # a KPI table before its catalog entry
        assert order[kpi_names(kpi).table] < order[kpi_names(kpi).catalog]
