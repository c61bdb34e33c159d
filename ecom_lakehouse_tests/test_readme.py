"""Every command the README shows runs, as written, on the demo `make run` makes.

The demo files come from the Makefile's own `demo` target (what `make run` seeds), loaded by
`ecom-lakehouse ingest`; each command of the README's `sh` blocks then runs in a folder laid
out as the repository is (`.venv/bin/...`, the lake in `.lakehouse`), through bash, as a user
would paste it. `make` lines are the two commands themselves (CI runs `make test`)."""

import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO_ORDERS = "300"  # the demo's shape at a smaller size: the commands do not depend on it


def readme_commands(text: str) -> list[str]:
    """The commands of the ``sh`` blocks: a command runs on until its quotes close."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        pending = ""
        for line in block.splitlines():
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending = f"{pending}\n{line}" if pending else line
            if _complete(pending):
                commands.append(pending)
                pending = ""
        assert not pending, f"an unclosed quote in the README: {pending}"
    return commands


def _complete(command: str) -> bool:
    try:
        shlex.split(command, comments=True)
    except ValueError:  # no closing quotation yet
        return False
    return True


def user_env() -> dict[str, str]:
    """A shell as a user has it: no lake or instance chosen (the defaults apply)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "DAGSTER_"))}
    return env | {"ECOM_LAKEHOUSE_DEBUG": ""}


def run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=user_env(), capture_output=True, text=True,
        check=False,
        timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder like a checkout after `make run` seeded its demo and the sensor loaded it."""
    home = tmp_path_factory.mktemp("checkout")
    (home / ".venv").symlink_to(REPO / ".venv")
    seeded = subprocess.run(
        ["make", "-s", "-C", str(REPO), "demo", f"LAKEHOUSE_URI={home / '.lakehouse'}",
         f"DEMO_ORDERS={DEMO_ORDERS}"],
        env=user_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert seeded.returncode == 0, seeded.stderr
    loaded = run(".venv/bin/ecom-lakehouse ingest", home)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert " 0 rejected, 0 failed" in loaded.stdout, loaded.stdout
    yield home


README_COMMANDS = [
    c for c in readme_commands((REPO / "README.md").read_text()) if not c.startswith("make ")
]


def test_the_readme_shows_commands_to_run():
    assert len(README_COMMANDS) >= 8
    assert all(c.startswith(".venv/bin/ecom-lakehouse ") for c in README_COMMANDS)


@pytest.mark.parametrize("command", README_COMMANDS, ids=lambda c: c.split("\n")[0][:60])
def test_every_readme_command_runs_on_the_demo(demo: Path, command: str):
    done = run(command, demo)
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip(), command
    assert "Traceback" not in done.stderr


def test_the_demo_has_rejected_rows_and_new_data_lands_beside_it(demo: Path):
    rejected = run(
        '.venv/bin/ecom-lakehouse query "SELECT count(*) FROM rejected_order_items" --format csv',
        demo,
    )
    assert rejected.stdout.split() == ["count_star()", "3"], rejected.stdout
    # the README's "beside the demo" commands (run above too; again, they change no count):
    # May's orders land beside April's, none of April's overwritten
    for command in README_COMMANDS:
        if " generate " in command or command.endswith(" ingest"):
            assert run(command, demo).returncode == 0, command
    orders = run(
        '.venv/bin/ecom-lakehouse query "SELECT count(*) FILTER (WHERE date < DATE '
        "'2025-05-01'), count(*) FILTER (WHERE date >= DATE '2025-05-01') FROM orders\" "
        "--format csv",
        demo,
    )
    assert orders.stdout.splitlines()[1].split(",") == [DEMO_ORDERS, "500"], orders.stdout


def test_a_closed_pipe_ends_the_output_quietly(demo: Path):
    process = subprocess.Popen(
        [".venv/bin/ecom-lakehouse", "status"], cwd=demo, env=user_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()  # `| head -1`: one line, then the reader is gone
    process.stdout.close()
    errors = process.stderr.read()
    process.wait(timeout=120)
    assert "Traceback" not in errors and "BrokenPipe" not in errors, errors


def test_query_outside_a_lake_names_lakehouse_uri(tmp_path: Path):
    done = subprocess.run(
        [str(REPO / ".venv/bin/ecom-lakehouse"), "query", "SELECT 1"], cwd=tmp_path, check=False,
        env=user_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1
    assert "LAKEHOUSE_URI" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_make_run_links_notifications_to_the_port_it_serves():
    planned = subprocess.run(
        ["make", "-n", "-C", str(REPO), "run", "PORT=3100"], capture_output=True, text=True,
        check=True, env=user_env(),
    )  # fmt: skip
    assert "DAGSTER_UI_URL=${DAGSTER_UI_URL:-http://127.0.0.1:3100}" in planned.stdout
    assert "-p 3100" in planned.stdout
