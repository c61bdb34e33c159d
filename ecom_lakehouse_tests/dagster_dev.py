"""`dagster dev` as a child process for the tests and the freshness benchmark: the local
instance settings of `make run`, its own session (so its whole group can be stopped), and a
stop that escalates to SIGKILL when SIGTERM is not enough."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def dagster_dev_process(
    lake_dir: Path,
    home: Path,
    port: int,
    stderr: IO | int = subprocess.DEVNULL,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen]:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "deploy/local/dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "LAKEHOUSE_URI": str(lake_dir), "DAGSTER_HOME": str(home)}
    env |= extra_env or {}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=stderr,
    )  # fmt: skip
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # it sometimes ignores SIGTERM
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_graphql(port: int, body: dict) -> dict:
    """POST a GraphQL request body (query and variables) as any HTTP client would."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def graphql(port: int, query_text: str) -> dict:
    return post_graphql(port, {"query": query_text})["data"]


class DagsterDevFailed(RuntimeError):
    pass


@contextmanager
def running_dagster_dev(
    workdir: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[tuple[int, Path, float]]:
    """`dagster dev` on a lake in ``workdir``, once its GraphQL answers: (port, lake folder,
    the moment the UI came up)."""
    lake_dir, home, port = workdir / "lake", workdir / "dagster_home", free_port()
    log = workdir / "dagster.log"
    with (
        log.open("w") as stderr,
        dagster_dev_process(lake_dir, home, port, stderr, extra_env) as process,
    ):
        yield port, lake_dir, wait_until_answering(port, process, log)


def wait_until_answering(port: int, process: subprocess.Popen, log: Path | None = None) -> float:
    """Wait until `dagster dev`'s GraphQL answers (90 s at most); the moment it did."""
    deadline = time.monotonic() + 90
    while True:
        try:
            graphql(port, "{ version }")
            return time.monotonic()
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                said = log.read_text()[-3000:] if log else "its log was not kept"
                raise DagsterDevFailed(said) from None
            time.sleep(0.5)
