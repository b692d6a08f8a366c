"""Security basics without a broker: the web server's bind address, the order id of a path.

The real-broker half (no secret in any log line or document, /orders answering 400 for bad
ids, the listening socket on 127.0.0.1) is tests/integration/test_security.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import streams.worker.app as app_module
import streams.worker.lifecycle as lifecycle
from schemas.limits import MAX_ORDER_ID_LENGTH
from streams.cli import worker_cmd
from streams.config import DEFAULT_WORKER_BIND, Settings, load_settings, parse_bind
from streams.errors import ConfigError
from streams.web.order_path import order_id_from_path
from streams.worker.app import create_worker
from streams.worker.faust_app import WorkerOptions
from streams.worker.lifecycle import web_host_for
from topology.topics import TopicId

# -- bind address -------------------------------------------------------------------------


def test_the_web_server_binds_loopback_unless_told_otherwise() -> None:
    assert DEFAULT_WORKER_BIND == "127.0.0.1"
    assert Settings().worker_bind == load_settings({}).worker_bind == "127.0.0.1"
    assert WorkerOptions(Path("."), 6066, 1, {}).web_bind == "127.0.0.1"
    assert load_settings({"CROSSCHECK_WORKER_BIND": "0.0.0.0"}).worker_bind == "0.0.0.0"
    assert load_settings({"CROSSCHECK_WORKER_BIND": " ::1 "}).worker_bind == "::1"
    assert load_settings({"CROSSCHECK_WORKER_BIND": ""}).worker_bind == "127.0.0.1"
    for bad in ("localhost", "0.0.0.0:80", "256.1.1.1", "*"):
        with pytest.raises(ConfigError, match=r"^CROSSCHECK_WORKER_BIND: .* is not an IP"):
            load_settings({"CROSSCHECK_WORKER_BIND": bad})
    assert parse_bind("::") == "::"


def test_the_faust_app_gets_the_bind_address(tmp_path: Path) -> None:
    outputs = dict.fromkeys(TopicId, 1)
    default = create_worker(Settings(), WorkerOptions(tmp_path / "a", 16066, 1, outputs))
    assert default.app.conf.web_bind == "127.0.0.1"
    assert str(default.app.conf.canonical_url) == "http://127.0.0.1:16066"
    wide = create_worker(Settings(), WorkerOptions(tmp_path / "b", 16067, 1, outputs,
                                                   web_bind="0.0.0.0"))
    assert wide.app.conf.web_bind == "0.0.0.0"
    assert web_host_for("0.0.0.0") == str(wide.app.conf.canonical_url.host)  # this host's name
    assert web_host_for("10.1.2.3") == "10.1.2.3" and web_host_for("::1") == "[::1]"


def _worker_options(monkeypatch: pytest.MonkeyPatch, *args: str,
                    env: dict[str, str] | None = None) -> tuple[Any, str]:
    """The WorkerOptions `crosscheck worker ARGS` would start with (nothing is started)."""
    seen: list[Any] = []
    bound: list[tuple[int, str]] = []

    class Stop(Exception):
        pass

    def fake_create(settings: Settings, options: WorkerOptions) -> Any:
        seen.append(options)
        raise Stop

    monkeypatch.setattr(lifecycle, "discover_partitions", lambda s: (1, dict.fromkeys(TopicId, 1)))
    monkeypatch.setattr(lifecycle, "check_port_free", lambda port, bind: bound.append((port, bind)))
    monkeypatch.setattr(app_module, "create_worker", fake_create)
    result = CliRunner().invoke(worker_cmd.worker, list(args), env=env)
    if not seen:
        return None, result.output
    assert isinstance(result.exception, Stop), result.output
    assert bound == [(seen[0].web_port, seen[0].web_bind)]
    return seen[0], result.output


def test_the_worker_command_binds_loopback_by_default(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    home = {"CROSSCHECK_HOME": str(tmp_path), "CROSSCHECK_WORKER_BIND": ""}
    options, _ = _worker_options(monkeypatch, "--web-port", "16070", env=home)
    assert (options.web_bind, options.web_port) == ("127.0.0.1", 16070)
    options, _ = _worker_options(monkeypatch, "--web-bind", "0.0.0.0", env=home)
    assert options.web_bind == "0.0.0.0"
    options, _ = _worker_options(monkeypatch, env={**home, "CROSSCHECK_WORKER_BIND": "::"})
    assert options.web_bind == "::"
    options, output = _worker_options(monkeypatch, "--web-bind", "example.org", env=home)
    assert options is None and "--web-bind" in output and "is not an IP address" in output


# -- /orders/{order_id}: the id in the raw path ---------------------------------------------


@pytest.mark.parametrize(("raw", "order_id"), [
    ("/orders/o1", "o1"),
    ("/orders/ORD-E7F6-000009?x=1", "ORD-E7F6-000009"),
    ("/orders/a%2Fb%20c", "a/b c"),
    ("/orders/%E8%AE%A2%E5%8D%95-1", "订单-1"),
    ("/orders/" + "o" * MAX_ORDER_ID_LENGTH, "o" * MAX_ORDER_ID_LENGTH),
    ("/orders/" + "%E4%B8%AD" * MAX_ORDER_ID_LENGTH, "中" * MAX_ORDER_ID_LENGTH),
    ("/orders/a+b", "a+b"),
])
def test_valid_order_ids_in_paths(raw: str, order_id: str) -> None:
    assert order_id_from_path(raw) == order_id


@pytest.mark.parametrize(("raw", "reason"), [
    ("/orders/%20%20", "must not be blank"),
    ("/orders/%09", "contains a control character (U+0009 at position 0)"),
    ("/orders/a%0Ab", "contains a control character (U+000A at position 1)"),
    ("/orders/%00", "contains a control character (U+0000"),
    ("/orders/%C2%85", "contains a control character (U+0085"),
    ("/orders/" + "o" * (MAX_ORDER_ID_LENGTH + 1), "is too long: 257 characters (at most 256)"),
    ("/orders/" + "x" * 10_000, "is too long: 10000 characters in the URL"),
    ("/orders/%ff", "is not UTF-8 once percent-decoded (invalid start byte at byte 0)"),
    ("/orders/%C3%28", "is not UTF-8 once percent-decoded"),
    ("/orders/%ED%A0%80", "is not UTF-8 once percent-decoded"),  # an encoded surrogate
    ("/orders/%zz", "invalid percent-encoding at character 0"),
    ("/orders/ab%4", "invalid percent-encoding at character 2"),
    ("/orders/%", "invalid percent-encoding"),
    ("/orders/", "must not be empty"),
    ("/elsewhere/o1", "not a /orders/{order_id} path"),
])
def test_invalid_order_ids_in_paths(raw: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        order_id_from_path(raw)
    assert str(info.value).startswith(reason), str(info.value)
    assert len(str(info.value)) < 150


def test_raw_bytes_kept_as_surrogate_escapes_are_not_an_order_id() -> None:
    raw = b"/orders/\xff\xfe".decode("utf-8", "surrogateescape")
    with pytest.raises(ValueError, match=r"^is not UTF-8 \(raw bytes in the URL\)$"):
        order_id_from_path(raw)
    assert order_id_from_path("/orders/订单") == "订单"  # raw UTF-8 in the request line
