"""`dagster dev` as a child process for the tests and the freshness benchmark: the local
instance settings of `make run`, its own session (so its whole group can be stopped), and a
stop that escalates to SIGKILL when SIGTERM is not enough."""

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def dagster_dev_process(
    lake_dir: Path, home: Path, port: int, stderr: IO | int = subprocess.DEVNULL
) -> Iterator[subprocess.Popen]:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "deploy/local/dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "LAKEHOUSE_URI": str(lake_dir), "DAGSTER_HOME": str(home)}
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
