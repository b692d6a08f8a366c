"""The Faust guard: tested versions, source fingerprints, the override, and the CLI's refusal."""

from __future__ import annotations

import inspect
import re
import textwrap
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer, Fetcher
from mode.utils.futures import notify

import streams.worker.lifecycle as lifecycle
from streams.cli import worker_cmd
from streams.cli.main import CrosscheckGroup
from streams.config import ENV_VARS
from streams.worker import faust_guard, faust_patch
from streams.worker.faust_guard import (
    OVERRIDE_VARIABLE,
    TESTED_VERSIONS,
    FaustCouplingError,
    check,
    fingerprint,
    fingerprint_problems,
    source_of,
    version_problems,
)
from topology.topics import TopicId

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
NEWER = {"faust-streaming": "0.16.0", "aiokafka": "0.14.0"}.get


def test_the_tested_versions_are_the_pinned_and_the_installed_ones() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pins = {}
    for spec in dependencies:
        found = re.fullmatch(r"([a-z-]+)(\[[^\]]*\])?==([\w.]+)", spec)
        if found:
            pins[found[1]] = found[3]
    assert {name: pins.get(name) for name in TESTED_VERSIONS} == TESTED_VERSIONS
    assert version_problems() == []
    assert OVERRIDE_VARIABLE in ENV_VARS  # listed with every other variable (the README's)


def test_every_recorded_fingerprint_fits_the_installed_sources() -> None:
    assert fingerprint_problems() == []
    assert check(environ={}) == []


@pytest.mark.parametrize(("target", "live"), [
    ("faust.transport.consumer:Consumer.getmany", Consumer.getmany),
    ("faust.transport.consumer:Consumer.seek_to_committed", Consumer.seek_to_committed),
    ("faust.transport.consumer:Fetcher._fetcher", Fetcher._fetcher.fun),  # decorated
    ("mode.utils.futures:notify", notify),  # a module's function
])
def test_the_source_read_is_what_inspect_gives(target: str, live: object) -> None:
    assert source_of(target) == textwrap.dedent(inspect.getsource(live))  # type: ignore[arg-type]


def test_a_fingerprint_is_of_the_shipped_source_even_once_the_method_is_replaced() -> None:
    recovery = "faust.tables.recovery:Recovery.on_recovery_completed"
    before = fingerprint(recovery)
    faust_patch.apply()  # replaces it in this process
    assert "first seek, then resume" in inspect.getsource(Recovery.on_recovery_completed)
    assert "first seek, then resume" not in source_of(recovery)
    assert fingerprint(recovery) == before == faust_guard.FINGERPRINTS[recovery]


def test_an_untested_version_is_refused_in_one_line_naming_both_and_the_override() -> None:
    with pytest.raises(FaustCouplingError) as refused:
        check(environ={}, installed=NEWER, expected={})
    message = str(refused.value)
    assert "\n" not in message
    assert "faust-streaming 0.16.0 is installed" in message
    assert f"faust-streaming {TESTED_VERSIONS['faust-streaming']} only" in message
    assert f"{OVERRIDE_VARIABLE}=1" in message and "docs/faust.md" in message
    with pytest.raises(FaustCouplingError, match=r"aiokafka \(not installed\) is installed"):
        check(environ={}, installed={"faust-streaming": "0.15.3"}.get, expected={})


def test_a_changed_method_is_refused_naming_it() -> None:
    target = "faust.transport.consumer:Consumer._drain_messages"
    expected = {target: "0" * 64}
    with pytest.raises(FaustCouplingError, match=r"^Consumer\._drain_messages is not the code"):
        check(environ={}, expected=expected)
    gone = {"faust.transport.consumer:Consumer._drain_everything": "0" * 64}
    with pytest.raises(FaustCouplingError, match=r"_drain_everything cannot be read"):
        check(environ={}, expected=gone)


def test_several_mismatches_are_still_one_line() -> None:
    expected = {"faust.transport.consumer:Consumer.ack": "0" * 64,
                "faust.transport.consumer:Consumer.getmany": "0" * 64}
    with pytest.raises(FaustCouplingError) as refused:
        check(environ={}, installed=NEWER, expected=expected)
    message = str(refused.value)
    assert message.startswith("faust-streaming 0.16.0") and "(and 2 more)" in message
    assert "\n" not in message


def test_the_override_turns_the_refusal_into_warnings(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    expected = {"faust.transport.consumer:Consumer.ack": "0" * 64}
    problems = check(environ={OVERRIDE_VARIABLE: "1"}, installed=NEWER, expected=expected)
    assert len(problems) == 2 and "Consumer.ack" in problems[1]
    for other in ("0", "yes", ""):  # only 1 accepts the risk
        with pytest.raises(FaustCouplingError):
            check(environ={OVERRIDE_VARIABLE: other}, installed=NEWER, expected={})
    # ensure(): once per process, each mismatch a warning on stderr under the override
    monkeypatch.setattr(faust_guard, "TESTED_VERSIONS", {"faust-streaming": "0.16.0"})
    monkeypatch.setattr(faust_guard, "_checked", False)
    monkeypatch.setenv(OVERRIDE_VARIABLE, "1")
    faust_guard.ensure()
    warned = capsys.readouterr().err
    assert warned.startswith("crosscheck: warning: faust-streaming 0.15.3 is installed")
    assert f"running anyway ({OVERRIDE_VARIABLE}=1)" in warned
    monkeypatch.delenv(OVERRIDE_VARIABLE)
    faust_guard.ensure()  # checked already: not again
    monkeypatch.setattr(faust_guard, "_checked", False)
    with pytest.raises(FaustCouplingError):
        faust_guard.ensure()


def test_the_worker_command_refuses_an_untested_faust_through_the_cli_error_path(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(faust_guard, "TESTED_VERSIONS", {"faust-streaming": "0.16.0"})
    monkeypatch.setattr(faust_guard, "_checked", False)
    monkeypatch.setattr(lifecycle, "discover_partitions", lambda s: (1, dict.fromkeys(TopicId, 1)))
    monkeypatch.setattr(lifecycle, "check_port_free", lambda port, bind: None)
    env = {"CROSSCHECK_HOME": str(tmp_path), OVERRIDE_VARIABLE: ""}
    cli = CrosscheckGroup(commands={"worker": worker_cmd.worker})  # crosscheck's error path
    result = CliRunner().invoke(cli, ["worker", "--web-port", "16090"], env=env)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("crosscheck: error: faust-streaming 0.15.3 is installed, but")
    assert "0.16.0 only" in lines[-1] and f"{OVERRIDE_VARIABLE}=1" in lines[-1]
    assert "Traceback" not in result.output
