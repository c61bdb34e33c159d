"""ecom-lakehouse: landed files to Delta Lake tables, orchestrated by Dagster."""
