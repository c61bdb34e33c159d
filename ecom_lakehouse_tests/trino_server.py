"""A single-node Trino 476 (the engine Athena engine v3 is built on) for the test session, with
a Delta Lake catalog whose Glue metastore and S3 file system are the moto server: it reads the
tables exactly as the ``<dataset>_catalog`` assets registered them.

Started with ``java`` directly (the process is the JVM: stopping it stops Trino), a small heap,
serial GC and C1 only: about 12 s and 0.5 GB here.
"""

from __future__ import annotations

import contextlib
import json
import resource
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trino

from ecom_lakehouse_tests.jvm import trino_home, trino_java_home

CATALOG = "delta"
JVM_OPTIONS = (
    "-Xmx512M", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:+ExitOnOutOfMemoryError",
    "-Duser.timezone=UTC", "-Dfile.encoding=UTF-8",
)  # fmt: skip
# Right after start the coordinator may not list itself as a worker yet (up to ~5 s after it
# says it has started): a query that meets these is sent again.
STARTING = {"SERVER_STARTING_UP", "NO_NODES_AVAILABLE"}


def _properties(values: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


def write_config(etc: Path, port: int, moto: str, region: str, home: Path) -> None:
    (etc / "catalog").mkdir(parents=True, exist_ok=True)
    (etc / "config.properties").write_text(_properties({
        "coordinator": "true",
        "node-scheduler.include-coordinator": "true",
        "http-server.http.port": str(port),
        "discovery.uri": f"http://127.0.0.1:{port}",
        "http-server.log.enabled": "false",
        "web-ui.enabled": "false",
        "catalog.config-dir": str(etc / "catalog"),
        "plugin.dir": str(home / "plugin"),
    }))  # fmt: skip
    (etc / "log.properties").write_text("io.trino=WARN\n")
    (etc / "catalog" / f"{CATALOG}.properties").write_text(_properties({
        "connector.name": "delta_lake",
        "hive.metastore": "glue",
        "hive.metastore.glue.region": region,
        "hive.metastore.glue.endpoint-url": moto,
        "hive.metastore.glue.aws-access-key": "testing",
        "hive.metastore.glue.aws-secret-key": "testing",
        "fs.native-s3.enabled": "true",
        "s3.endpoint": moto,
        "s3.region": region,
        "s3.path-style-access": "true",
        "s3.aws-access-key": "testing",
        "s3.aws-secret-key": "testing",
    }))  # fmt: skip


def _more_open_files() -> None:
    """Trino refuses to start below 4096 open files: the test process raises its own soft limit
    to the hard one, which the server inherits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65_536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


@dataclass(frozen=True)
class Trino:
    host: str
    port: int

    def rows(self, sql: str, schema: str | None = None, retry_for: float = 15.0) -> list[tuple]:
        """The rows of ``sql`` (values typed: Decimal, date, datetime in UTC)."""
        deadline = time.monotonic() + retry_for
        while True:
            connection = trino.dbapi.connect(
                host=self.host, port=self.port, user="tests", catalog=CATALOG, schema=schema,
                http_scheme="http", timezone="UTC",
            )  # fmt: skip
            try:
                cursor = connection.cursor()
                cursor.execute(sql)
                return [tuple(row) for row in cursor.fetchall()]
            except trino.exceptions.TrinoQueryError as error:
                if error.error_name not in STARTING or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
            finally:
                connection.close()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v1/info", timeout=2) as response:
            info: dict[str, Any] = json.load(response)
            return not info["starting"]
    except OSError:
        return False


@contextlib.contextmanager
def running_trino(
    moto: str, region: str, workdir: Path, port: Callable[[], int]
) -> Iterator[Trino]:
    """A Trino server on a free port (``port()`` picks one): started again on another port
    when it cannot bind the one it was given (another process took it since it was picked)."""
    for attempt in range(START_ATTEMPTS):
        with _started(moto, region, workdir / f"start-{attempt}", port()) as started:
            if started is not None:
                yield started
                return
    raise RuntimeError(f"Trino did not start: {START_ATTEMPTS} ports were taken before it bound")


START_ATTEMPTS = 3


@contextlib.contextmanager
def _started(moto: str, region: str, workdir: Path, port: int) -> Iterator[Trino | None]:
    """The server, or None when it could not bind its port."""
    home, java = trino_home(), trino_java_home()
    etc, data = workdir / "etc", workdir / "data"
    write_config(etc, port, moto, region, home)
    data.mkdir(parents=True, exist_ok=True)
    command = [
        str(java / "bin" / "java"), "-cp", f"{home / 'lib'}/*", *JVM_OPTIONS,
        f"-Dconfig={etc / 'config.properties'}", f"-Dlog.levels-file={etc / 'log.properties'}",
        # the launcher passes node.properties as -D; started directly, these are the ones read
        f"-Dnode.data-dir={data}", "-Dnode.environment=test", "-Dnode.id=tests",
        "-Dnode.internal-address=127.0.0.1",
        "io.trino.server.TrinoServer",
    ]  # fmt: skip
    log_path = workdir / "trino.log"
    _more_open_files()
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=data, stdout=log, stderr=subprocess.STDOUT)
        try:
            url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 180
            while not _ready(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    text = log_path.read_text(errors="replace")
                    if process.poll() is not None and "ServerSocket" in text:
                        yield None  # its port was taken: the caller tries another
                        return
                    raise RuntimeError(
                        f"Trino did not start (exit {process.poll()}):\n{text[-3000:]}"
                    )
                time.sleep(0.5)
            server = Trino("127.0.0.1", port)
            server.rows("SELECT 1")
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
