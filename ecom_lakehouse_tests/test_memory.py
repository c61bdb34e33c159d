import os
import subprocess
import sys

import pytest

from ecom_lakehouse.memory import release_freed_memory

POOL = "import ecom_lakehouse.pipeline, pyarrow as pa; print(pa.default_memory_pool().backend_name)"


def backend(environ: dict[str, str]) -> str:
    run = subprocess.run(
        [sys.executable, "-c", POOL], env=environ, capture_output=True, text=True, check=True
    )
    return run.stdout.strip()


@pytest.mark.skipif(sys.platform != "linux", reason="the jemalloc default is set on Linux only")
def test_arrow_uses_jemalloc_unless_told_otherwise():
    environ = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    assert backend(environ) == "jemalloc"
    assert backend({**environ, "ARROW_DEFAULT_MEMORY_POOL": "system"}) == "system"


def test_releasing_freed_memory_keeps_live_buffers_intact():
    import pyarrow as pa

    kept = pa.array(range(100_000))
    garbage = pa.array(range(1_000_000))
    del garbage
    release_freed_memory()
    assert kept.sum().as_py() == sum(range(100_000))
