"""The JVM engines the tests run: Spark's Delta Lake jars (the versions AWS Glue 5.0 runs) and a
single-node Trino 476 (the engine Athena engine v3 is built on), fetched from Maven Central by
the install step into a cache outside the repository, never at test time.

    python -m ecom_lakehouse_tests.jvm      # fetch what is missing (make test runs it)

The cache is ``$ECOM_LAKEHOUSE_CACHE`` (default ``~/.cache/ecom-lakehouse``); a test that finds
something missing fails naming it and the command that fetches it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get("ECOM_LAKEHOUSE_CACHE", Path.home() / ".cache" / "ecom-lakehouse"))
MAVEN_REPO = CACHE / "m2"  # Maven's own cache of what it fetched, kept between runs

# Glue 5.0: Spark 3.5.4 (Hadoop 3.3.4 client), Scala 2.12, Delta Lake 3.3.0. hadoop-aws matches
# the Hadoop in pyspark's jars, with the AWS SDK bundle it was built against (S3 on moto).
SPARK_JARS = CACHE / "jars" / "spark-delta"
SPARK_ARTIFACTS = (
    "io.delta:delta-spark_2.12:3.3.0",
    "io.delta:delta-storage:3.3.0",
    "org.apache.hadoop:hadoop-aws:3.3.4",
    "com.amazonaws:aws-java-sdk-bundle:1.12.262",
    "org.wildfly.openssl:wildfly-openssl:1.0.7.Final",
)

# Trino 476, the newest on Maven Central. Its Delta Lake plugin is not published there on its
# own: the whole server (821 MB) is fetched once and only what the tests run is unpacked (the
# launcher, the server's libraries and the delta-lake plugin: ~400 MB). It needs Java 24+.
TRINO_VERSION = "476"
TRINO_HOME = CACHE / "trino" / f"trino-server-{TRINO_VERSION}"
TRINO_SERVER = f"io.trino:trino-server:{TRINO_VERSION}:tar.gz"
TRINO_PARTS = ("bin/", "lib/", "plugin/delta-lake/", "NOTICE", "README.txt")
TRINO_JAVA_HOMES = (
    os.environ.get("TRINO_JAVA_HOME", ""),
    "/usr/lib/jvm/temurin-25-jdk-amd64",
)

FETCH = f"{Path(sys.executable).name} -m ecom_lakehouse_tests.jvm (make test runs it)"


class MissingDownload(Exception):
    """Something the install step fetches is not in the cache."""


def jar_name(artifact: str) -> str:
    _, name, version = artifact.split(":")
    return f"{name}-{version}.jar"


def spark_jars() -> list[Path]:
    """The Delta (and S3) jars for a local SparkSession; fails naming what is missing."""
    jars = [SPARK_JARS / jar_name(a) for a in SPARK_ARTIFACTS]
    missing = [a for a, jar in zip(SPARK_ARTIFACTS, jars, strict=True) if not jar.exists()]
    if missing:
        raise MissingDownload(f"{', '.join(missing)} not in {SPARK_JARS}: run {FETCH}")
    return jars


def spark_confs(warehouse: Path, s3_endpoint: str | None = None) -> dict[str, str]:
    """A local SparkSession as Glue 5 makes one for the job: the Delta jars and the product's
    Delta confs; with ``s3_endpoint``, ``s3://`` through S3A on that (moto) endpoint."""
    from ecom_lakehouse.resources.merge_engines import DELTA_SPARK_CONFS

    confs = {
        "spark.jars": ",".join(str(jar) for jar in spark_jars()),
        **DELTA_SPARK_CONFS,
        "spark.sql.warehouse.dir": str(warehouse),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "2",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    }
    if s3_endpoint:
        s3a = "spark.hadoop.fs.s3a."
        confs |= {
            "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
            f"{s3a}endpoint": s3_endpoint,
            f"{s3a}path.style.access": "true",
            f"{s3a}connection.ssl.enabled": "false",
            f"{s3a}aws.credentials.provider": (
                "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
            ),
            f"{s3a}access.key": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            f"{s3a}secret.key": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            "spark.delta.logStore.s3.impl": "io.delta.storage.S3SingleDriverLogStore",
        }
    return confs


def submit_args(confs: dict[str, str]) -> str:
    """The confs as ``PYSPARK_SUBMIT_ARGS``: a job script's own ``getOrCreate()`` takes them."""
    return " ".join(f"--conf {k}={v}" for k, v in confs.items()) + " pyspark-shell"


def trino_java_home() -> Path:
    for home in TRINO_JAVA_HOMES:
        if home and (Path(home) / "bin" / "java").exists():
            return Path(home)
    raise MissingDownload(
        f"Trino {TRINO_VERSION} needs Java 24+: none in {[h for h in TRINO_JAVA_HOMES if h]} "
        "(set TRINO_JAVA_HOME)"
    )


def trino_home() -> Path:
    if not _trino_unpacked():
        raise MissingDownload(f"{TRINO_SERVER} is not unpacked in {TRINO_HOME}: run {FETCH}")
    return TRINO_HOME


def _trino_unpacked() -> bool:
    return (TRINO_HOME / "bin" / "launcher").exists() and (
        TRINO_HOME / "plugin" / "delta-lake"
    ).is_dir()


def _maven_copy(artifact: str, into: Path) -> Path:
    """One artifact from Maven Central (through Maven's cache) into ``into``."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingDownload(f"mvn is not installed: cannot fetch {artifact}")
    into.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [mvn, "-q", "-B", "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy",
         f"-Dartifact={artifact}", f"-DoutputDirectory={into}",
         f"-Dmaven.repo.local={MAVEN_REPO}", "-Dmdep.overWriteIfNewer=false"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise MissingDownload(f"could not fetch {artifact} from Maven Central:\n" + "\n".join(tail))
    _, name, version, *kind = artifact.split(":")
    return into / f"{name}-{version}.{kind[0] if kind else 'jar'}"


def fetch_spark_jars() -> list[Path]:
    fetched = []
    for artifact in SPARK_ARTIFACTS:
        jar = SPARK_JARS / jar_name(artifact)
        fetched.append(jar if jar.exists() else _maven_copy(artifact, SPARK_JARS))
    return fetched


def fetch_trino() -> Path:
    if _trino_unpacked():
        return TRINO_HOME
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        work = Path(scratch)
        server = _maven_copy(TRINO_SERVER, work)
        with tarfile.open(server) as tar:
            top = f"trino-server-{TRINO_VERSION}/"
            wanted = [m for m in tar.getmembers()
                      if m.name.removeprefix(top).startswith(TRINO_PARTS)]  # fmt: skip
            tar.extractall(work, members=wanted, filter="tar")
        server.unlink()
        # Maven's cached copy is not needed once unpacked (821 MB)
        shutil.rmtree(MAVEN_REPO / "io" / "trino" / "trino-server", ignore_errors=True)
        TRINO_HOME.parent.mkdir(parents=True, exist_ok=True)
        (work / top).rename(TRINO_HOME)  # whole, in one step: never found half-unpacked
    return TRINO_HOME


def main() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        for jar in fetch_spark_jars():
            print(f"spark: {jar} ({jar.stat().st_size // 1_000_000} MB)")
        print(f"trino: {fetch_trino()}")
    except MissingDownload as missing:
        sys.exit(f"error: {missing}")


if __name__ == "__main__":
    main()
