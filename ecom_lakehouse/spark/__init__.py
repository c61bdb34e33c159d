"""The Spark engine: the same load as the local engine, as a PySpark job on AWS Glue or EMR
Serverless, launched from the Dagster assets through Dagster Pipes."""
