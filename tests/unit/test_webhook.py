"""The alert webhook: delivery, retries, bounded queue, dead endpoints, secrets kept out of logs.

Every test runs a real aiohttp server on 127.0.0.1 (ephemeral port) inside asyncio.run.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from schemas.codec import Codec
from schemas.registry import LocalRegistry
from streams.cli.worker_cmd import worker as worker_command
from streams.config import RuleConfig, Settings
from streams.metrics.aggregate import encode
from streams.metrics.tracker import WindowTracker
from streams.metrics.windows import Partial, PartitionWindows
from streams.model import Mismatch, MismatchType, Severity, Status
from streams.names import METRICS_TABLE
from streams.worker import app as app_module
from streams.worker import webhook
from streams.worker.faust_app import WorkerOptions
from streams.worker.idle import IdleTracker
from streams.worker.offsets import TailProbe
from streams.worker.store import Flushed
from streams.worker.webhook import WebhookSender, alert_payload, check_url, redact
from topology.topics import TopicId, Topology

MIN = 60_000
T0 = 1_795_255_200_000  # 2026-11-21T10:00:00Z
SECRETS = ("s3cret-pass", "s3cret-token", "frag-s3cret")


def alert(n: int = 0, kind: str = "MISMATCH") -> dict[str, Any]:
    """An Alert record as the aggregator makes it (times in epoch ms)."""
    return {"alert_id": f"a{n}", "kind": kind, "mismatch_type": "AMOUNT_MISMATCH",
            "severity": "HIGH", "count": 1, "window_start": T0, "window_end": T0 + MIN,
            "sample_order_ids": [f"o{n}"]}


@dataclass
class Endpoint:
    """What the test server saw, and the statuses it answers with (then 200)."""

    statuses: list[int] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        self.headers.append(dict(request.headers))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok" if status < 300 else "nope")

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def serve(test: Callable[[Endpoint], Awaitable[None]], statuses: list[int] | None = None
          ) -> Endpoint:
    """Run `test` against a fresh local server; returns what the server saw."""
    endpoint = Endpoint(list(statuses or []))

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook", endpoint.handle)
        runner = web.AppRunner(app, access_log=None)  # the receiving side logs nothing
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        endpoint.port = int(runner.addresses[0][1])
        try:
            await test(endpoint)
        finally:
            await runner.cleanup()

    asyncio.run(main())
    return endpoint


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- URLs -----------------------------------------------------------------------------------


def test_redact_strips_userinfo_query_and_fragment() -> None:
    assert redact("https://bob:pw@hooks.example.com:8443/a/b?token=x&y=1#frag") == \
        "https://hooks.example.com:8443/a/b"
    assert redact("http://127.0.0.1:9/hook") == "http://127.0.0.1:9/hook"
    assert redact("not a url") == "<invalid url>"


def test_check_url_accepts_http_and_rejects_the_rest_without_echoing_secrets() -> None:
    assert check_url("http://u:p@127.0.0.1:1/x?k=v") == "http://u:p@127.0.0.1:1/x?k=v"
    for bad in ["ftp://u:s3cret-pass@host/x?t=s3cret-token", "/relative?t=s3cret-token",
                "http:///nohost?t=s3cret-token"]:
        with pytest.raises(ValueError) as info:
            check_url(bad)
        assert not any(s in str(info.value) for s in SECRETS)


def test_payload_has_the_contract_fields_and_iso_times() -> None:
    body = alert_payload(alert(3, "STORM"))
    assert body == {"alert_id": "a3", "kind": "STORM", "mismatch_type": "AMOUNT_MISMATCH",
                    "severity": "HIGH", "count": 1, "window_start": "2026-11-21T10:00:00.000Z",
                    "window_end": "2026-11-21T10:01:00.000Z", "sample_order_ids": ["o3"]}


def test_payload_of_a_source_alert_has_iso_times_in_its_source() -> None:
    stalled = {**alert(4, "SOURCE_STALLED"), "mismatch_type": None, "sample_order_ids": [],
               "source": {"topic": "inventory", "partitions": [0, 2], "last_event_time": T0,
                          "stalled_ms": 600_000}}
    body = alert_payload(stalled)
    assert body["mismatch_type"] is None
    assert body["source"] == {"topic": "inventory", "partitions": [0, 2],
                              "last_event_time": "2026-11-21T10:00:00.000Z", "stalled_ms": 600_000}
    assert stalled["source"]["last_event_time"] == T0  # the alert itself is left as it was
    never = {**stalled, "source": {**stalled["source"], "last_event_time": None}}
    assert alert_payload(never)["source"]["last_event_time"] is None


# -- delivery -------------------------------------------------------------------------------


def test_alerts_are_delivered_as_json_posts() -> None:
    sender: list[WebhookSender] = []

    async def test(endpoint: Endpoint) -> None:
        url = f"http://alice:s3cret-pass@127.0.0.1:{endpoint.port}/hook?token=s3cret-token"
        s = WebhookSender(url, backoff=0.01)
        sender.append(s)
        for n in range(3):
            s.enqueue(alert(n))
        assert await s.drain(10)
        await s.close()

    seen = serve(test)
    s = sender[0]
    assert (s.delivered, s.failed, s.dropped, s.retries, s.queued) == (3, 0, 0, 0, 0)
    assert seen.bodies == [alert_payload(alert(n)) for n in range(3)]
    assert [h["X-Crosscheck-Alert-Id"] for h in seen.headers] == ["a0", "a1", "a2"]
    assert all(h["Content-Type"] == "application/json" for h in seen.headers)
    assert all(h["Authorization"].startswith("Basic ") for h in seen.headers)  # from userinfo


def test_server_errors_are_retried_with_backoff() -> None:
    sender: list[WebhookSender] = []

    async def test(endpoint: Endpoint) -> None:
        s = WebhookSender(endpoint.url(), backoff=0.05, max_attempts=5)
        sender.append(s)
        began = time.monotonic()
        s.enqueue(alert(1))
        assert await s.drain(10)
        # two failures: waits of 0.05 s and 0.1 s before the third attempt
        assert time.monotonic() - began >= 0.15
        await s.close()

    seen = serve(test, statuses=[500, 503])
    s = sender[0]
    assert (s.delivered, s.failed, s.retries) == (1, 0, 2)
    assert [b["alert_id"] for b in seen.bodies] == ["a1"] * 3


def test_attempts_are_bounded() -> None:
    sender: list[WebhookSender] = []

    async def test(endpoint: Endpoint) -> None:
        s = WebhookSender(endpoint.url(), backoff=0.01, max_attempts=3)
        sender.append(s)
        s.enqueue(alert(1))
        s.enqueue(alert(2))
        assert await s.drain(10)
        await s.close()

    seen = serve(test, statuses=[500, 502, 503, 429, 200])
    s = sender[0]
    assert (s.delivered, s.failed, s.retries) == (1, 1, 3)
    assert [b["alert_id"] for b in seen.bodies] == ["a1", "a1", "a1", "a2", "a2"]


def test_client_errors_are_not_retried() -> None:
    sender: list[WebhookSender] = []

    async def test(endpoint: Endpoint) -> None:
        s = WebhookSender(endpoint.url(), backoff=0.01)
        sender.append(s)
        s.enqueue(alert(1))
        s.enqueue(alert(2))
        assert await s.drain(10)
        await s.close()

    seen = serve(test, statuses=[400])
    s = sender[0]
    assert (s.delivered, s.failed, s.retries) == (1, 1, 0)
    assert len(seen.bodies) == 2


def test_the_queue_is_bounded_and_drops_the_oldest() -> None:
    sender: list[WebhookSender] = []

    async def test(endpoint: Endpoint) -> None:
        s = WebhookSender(endpoint.url(), queue_size=10)
        sender.append(s)
        for n in range(50):  # no await in between: the task cannot take any yet
            s.enqueue(alert(n))
        assert (s.queued, s.dropped) == (10, 40)
        assert await s.drain(10)
        await s.close()

    seen = serve(test)
    assert sender[0].delivered == 10
    assert [b["alert_id"] for b in seen.bodies] == [f"a{n}" for n in range(40, 50)]


def test_a_dead_endpoint_slows_nothing_and_secrets_stay_out_of_the_logs(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = (f"http://alice:s3cret-pass@127.0.0.1:{closed_port()}/hook"
           "?token=s3cret-token#frag-s3cret")

    async def main() -> WebhookSender:
        s = WebhookSender(url, backoff=0.01, max_attempts=3, queue_size=20)
        began = time.perf_counter()
        for n in range(1000):
            s.enqueue(alert(n))
        assert time.perf_counter() - began < 0.5  # ~microseconds each; nothing waits
        assert await s.drain(30)
        await s.close()
        return s

    s = asyncio.run(main())
    assert (s.delivered, s.dropped, s.failed, s.retries) == (0, 980, 20, 40)
    text = caplog.text
    assert "not delivered after 3 attempt(s): ClientConnectorError" in text
    assert "http://127.0.0.1:" in text
    assert "queue full" in text
    assert not any(secret in text for secret in SECRETS), text[:2000]
    assert "alice" not in text


def test_secrets_stay_out_of_the_logs_on_http_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def test(endpoint: Endpoint) -> None:
        url = (f"http://alice:s3cret-pass@127.0.0.1:{endpoint.port}/hook"
               "?token=s3cret-token#frag-s3cret")
        s = WebhookSender(url, backoff=0.01, max_attempts=2)
        s.enqueue(alert(1))
        s.enqueue(alert(2))
        assert await s.drain(10)
        await s.close()

    serve(test, statuses=[500, 500, 404])
    assert "HTTP 500" in caplog.text
    assert "HTTP 404" in caplog.text
    assert not any(secret in caplog.text for secret in SECRETS)


def test_enqueue_outside_a_loop_waits_for_start() -> None:
    sender: list[WebhookSender] = []

    async def test(endpoint: Endpoint) -> None:
        s = WebhookSender(endpoint.url())
        sender.append(s)
        await asyncio.to_thread(s.enqueue, alert(7))  # no running loop in that thread
        assert s.queued == 1
        await s.start()
        assert await s.drain(10)
        await s.close()

    seen = serve(test)
    assert sender[0].delivered == 1
    assert [b["alert_id"] for b in seen.bodies] == ["a7"]


# -- the worker's hook ----------------------------------------------------------------------


class FakeBlobTable:
    """Stands in for the RocksDB-backed BlobTable of the metrics table."""

    def __init__(self, table: dict[bytes, bytes], partition: int) -> None:
        self.table = table

    def get(self, key: bytes) -> bytes | None:
        return self.table.get(key)

    def put(self, key: bytes, value: bytes | None) -> None:
        if value is not None:
            self.table[key] = value

    def flush(self) -> Flushed:
        return Flushed([], None)


class FakeBatch:
    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes | None]] = []

    def append(self, *, key: bytes | None, value: bytes | None, timestamp: Any) -> object:
        self.records.append((key, value))
        return object()


class FakeProducer:
    """Faust's producer as the worker uses it: its aiokafka producer's record batches."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, bytes | None, bytes | None]] = []

    def _ensure_producer(self) -> FakeProducer:
        return self

    def create_batch(self) -> FakeBatch:
        return FakeBatch()

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int
                         ) -> asyncio.Future[None]:
        self.sent.extend((topic, partition, key, value) for key, value in batch.records)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def test_worker_with_a_dead_webhook_still_produces_every_alert(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(app_module, "BlobTable", FakeBlobTable)
    url = f"http://127.0.0.1:{closed_port()}/hook?token=s3cret-token"
    rules = RuleConfig(metrics_window=MIN, storm_threshold=20)
    settings = Settings(processing_guarantee="at_least_once", rules=rules)
    options = WorkerOptions(data_dir=tmp_path, web_port=0, input_partitions=1,
                            output_partitions={t: 1 for t in TopicId}, alert_webhook=url)
    codec = Codec(LocalRegistry())
    producer = FakeProducer()
    # a consumer with nothing committed: the aggregator's head-gap fix has nothing to do
    consumer = SimpleNamespace(_commit_fut=None, _committed_offset={}, _acked={},
                               _unacked_messages=set(), _add_gap=None, _gap={})
    fake_app = SimpleNamespace(tables={METRICS_TABLE: {}}, producer=producer,
                               consumer=consumer)
    worker = app_module.Worker(fake_app, settings, options,  # type: ignore[arg-type]
                               SimpleNamespace(codec=codec),  # type: ignore[arg-type]
                               IdleTracker(1000, 0), Topology(1, "", {}), TailProbe(settings))
    # window 0: 5 HIGH AMOUNT_MISMATCH (5 alerts) and 30 CRITICAL DUPLICATE_PAYMENT (1 storm)
    tracker, windows = WindowTracker(MIN, 21), PartitionWindows()
    tracker.on_outputs(windows, [
        Mismatch(f"m{kind}{i}", kind, Status.OPEN, f"o{kind}{i}", "s", severity, T0 + i, 0,
                 ("e",), None, {})
        for kind, severity, n in [(MismatchType.AMOUNT_MISMATCH, Severity.HIGH, 5),
                                  (MismatchType.DUPLICATE_PAYMENT, Severity.CRITICAL, 30)]
        for i in range(n)])
    partial = Partial(0, T0 + MIN, False, tracker.close(windows, T0 + MIN))
    event = SimpleNamespace(message=SimpleNamespace(value=encode(partial), topic="partials",
                                                    partition=0, offset=0,
                                                    tp=("partials", 0)))

    async def main() -> float:
        began = time.perf_counter()
        await worker.aggregate([event])
        took = time.perf_counter() - began
        sender = webhook.sender_for(url)
        assert sender.queued + sender.delivered + sender.failed <= 6
        await asyncio.sleep(0.3)  # let it fail a few times; the stream is not involved
        await sender.close()
        return took

    try:
        took = asyncio.run(main())
    finally:
        webhook._senders.pop(url, None)
    assert took < 0.5
    alerts = [codec.decode_as("Alert", value) for topic, _p, _k, value in producer.sent
              if topic == "crosscheck.alerts"]
    assert sorted((a["kind"], a["mismatch_type"]) for a in alerts) == \
        [("MISMATCH", "AMOUNT_MISMATCH")] * 5 + [("STORM", "DUPLICATE_PAYMENT")]
    metrics = [topic for topic, *_ in producer.sent if topic == "crosscheck.metrics"]
    assert len(metrics) == 1
    assert list(worker.recent_alerts) == alerts
    assert "s3cret" not in caplog.text


# -- the command line -----------------------------------------------------------------------


def test_worker_help_shows_the_option() -> None:
    result = CliRunner().invoke(worker_command, ["--help"])
    assert result.exit_code == 0
    assert "--alert-webhook" in result.output


def test_worker_rejects_a_bad_webhook_url_without_echoing_it() -> None:
    result = CliRunner().invoke(worker_command, [
        "--alert-webhook", "ftp://bob:s3cret-pass@host/x?token=s3cret-token"])
    assert result.exit_code == 2
    assert "--alert-webhook" in result.output
    assert not any(secret in result.output for secret in SECRETS)
