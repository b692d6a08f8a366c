"""The built wheel, installed into a fresh virtualenv, starts the local broker and runs a
short scenario on the native engine: everything a command needs is in the package."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.broker import LocalBroker
from streams.broker_config import kafka_version
from tests.integration.net import free_port_pair

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
#: where `make wheel` puts the wheel
DIST = ROOT / "dist"


def sources() -> Iterator[Path]:
    """The files a wheel is built from (what `make wheel`'s target depends on)."""
    yield from (ROOT / "pyproject.toml", ROOT / "README.md", ROOT / "native" / "Cargo.toml",
                ROOT / "native" / "Cargo.lock")
    yield from (ROOT / "native" / "src").glob("*.rs")
    for package in ("streams", "schemas", "topology"):
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".so":
                yield path


def the_wheel(tmp: Path) -> Path:
    """`make wheel`'s wheel when it is newer than every source; else one built now."""
    built = sorted(DIST.glob("crosscheck-*.whl"))
    newest = max(p.stat().st_mtime for p in sources())
    if len(built) == 1 and built[0].stat().st_mtime >= newest:
        return built[0]
    maturin = Path(sys.executable).with_name("maturin")
    subprocess.run([str(maturin), "build", "--release", "--quiet", "--out", str(tmp)],
                   cwd=ROOT, check=True, capture_output=True, timeout=540)
    (wheel,) = tmp.glob("crosscheck-*.whl")
    return wheel


def shared_jars() -> Path:
    """The Kafka jars the integration tests' broker uses (fetched once if missing)."""
    home = Path(os.environ.get("CROSSCHECK_HOME") or Path.home() / ".crosscheck").expanduser()
    jars = home / f"kafka-{kafka_version()}" / "lib"
    return LocalBroker(home, jars_dir=jars).ensure_jars()


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie, exited but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_the_wheel_runs_a_scenario_on_the_native_engine_from_a_fresh_virtualenv(
        tmp_path: Path) -> None:
    wheel = the_wheel(tmp_path / "dist")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CROSSCHECK_", "PYTHON", "VIRTUAL_ENV", "KAFKA_"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-compile", str(wheel)],
                   check=True, env=env, timeout=420)

    work = tmp_path / "work"  # not the repository: nothing of the source tree is importable
    work.mkdir()
    home = tmp_path / "home"
    (home / f"kafka-{kafka_version()}").mkdir(parents=True)
    (home / f"kafka-{kafka_version()}" / "lib").symlink_to(shared_jars())
    env.update(CROSSCHECK_HOME=str(home), CROSSCHECK_BROKER_PORT=str(free_port_pair()),
               CROSSCHECK_BROKER_HEAP="384m")

    def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), cwd=work, env=env, capture_output=True, text=True,
                              timeout=timeout, check=True)

    where = run(str(venv / "bin" / "python"), "-c",
                "import streams, streams.native as n; print(streams.__file__); print(n.status())")
    package, status = where.stdout.split()
    assert Path(package).is_relative_to(venv) and status == "native"

    started = run("crosscheck", "broker", "start")
    found = re.search(r"\(pid (\d+)\)", started.stdout)
    assert found, started.stdout + started.stderr
    pid = int(found.group(1))
    try:
        run("crosscheck", "topics", "create")
        run("crosscheck", "simulate", "--orders", "50", "--seed", "3", "--faults", "all=0.05",
            "--expected", str(tmp_path / "expected.jsonl"))
        expected = (tmp_path / "expected.jsonl").read_text().splitlines()
        replay = run("crosscheck", "replay", "--from", "2026-11-20T00:00:00Z",
                     "--to", "2026-12-10T00:00:00Z", "--out", str(tmp_path / "out"),
                     "--quiet", "--json")
        result = json.loads(replay.stdout.splitlines()[-1])
        assert result["done"] and result["engine"] == "native"
        assert "Python engine" not in replay.stderr  # no fallback notice
        assert result["events"] > 50 * 4 and result["mismatches"] > 0 and len(expected) > 0
        mismatches = (tmp_path / "out" / "mismatches.jsonl").read_text().splitlines()
        assert len(mismatches) == result["mismatches"] + result["resolved"]
        assert run("crosscheck", "broker", "stop").stdout.strip() == "stopped"
        assert not _alive(pid)
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
