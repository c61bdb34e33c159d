"""What follows a load, as one rule for the daemon and the CLI: every asset downstream of a
changed table whose automation condition is ``REFRESH_ON_UPDATE`` (the KPI tables computed
from it, then each changed table's catalog entry). The daemon's automation sensor evaluates the
condition; ``ecom-lakehouse ingest`` materializes ``follows_load`` of what it loaded."""

from collections.abc import Iterable

import dagster as dg

AC = dg.AutomationCondition

# Whenever a dependency was updated since this asset was last requested, and it is not
# running: an update that lands while a refresh is in progress is not lost (the plainer
# any_deps_updated() forgets one that lands while an upstream run is in progress).
REFRESH_ON_UPDATE = AC.any_deps_match(AC.newly_updated()).since(AC.newly_requested()) & ~(
    AC.in_progress()
)


def follows_load(defs: dg.Definitions, loaded: Iterable[dg.AssetKey]) -> list[dg.AssetKey]:
    """The assets that refresh after ``loaded`` changed, at any depth through assets that
    refresh (a KPI table, then its catalog entry), in the order they must run."""
    asset_graph = defs.resolve_asset_graph()
    following: set[dg.AssetKey] = set()
    pending = list(loaded)
    while pending:
        for child in asset_graph.get(pending.pop()).child_keys:
            node = asset_graph.get(child)
            if child not in following and node.automation_condition == REFRESH_ON_UPDATE:
                following.add(child)
                pending.append(child)
    return [key for key in asset_graph.toposorted_asset_keys if key in following]
