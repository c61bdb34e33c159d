"""The KPI tables: incremental refresh from the datasets' change, and their checks."""
