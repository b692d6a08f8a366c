"""Real-broker security checks of one worker: bind address, secrets, /orders id validation.

The worker runs with distinctive secrets where they are carried: a SASL user and password
(the local broker is PLAINTEXT, so librdkafka is given them and ignores them, and Faust gets
none), Schema Registry basic auth (no registry URL, so the local registry is used) and an
alert webhook whose URL has a user, a password and a token (a receiver here answers 500
once, then 204, so that failures are logged). It runs with --loglevel info and --echo,
judges rules_scenario plus a dead letter, and then:

* its web server listens on 127.0.0.1 only (the kernel's socket table);
* no secret is in its log, in /health, /metrics, /api/summary, /api/windows, /mismatches,
  /orders/{id}, the dashboard, nor in `crosscheck status` and `status --json` run with the
  same environment;
* /orders/{id} answers 400 with a JSON error for ids that are not valid order ids.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from streams.clients import admin
from streams.config import Settings, load_settings
from tests.integration.conftest import env_of
from tests.integration.scenarios import rules_scenario
from tests.integration.worker_support import (
    CROSSCHECK,
    Progress,
    WorkerProcess,
    produce,
    running_worker,
    wait_until_judged,
)
from topology.admin import create_topics
from topology.topics import Topology

pytestmark = pytest.mark.integration

TAG = uuid.uuid4().hex[:8]
SASL_PASSWORD = f"s3cr3t-sasl-{TAG}"
REGISTRY_PASSWORD = f"pw-registry-{TAG}"
WEBHOOK_USER = f"hookuser{TAG}"
WEBHOOK_PASSWORD = f"pw-webhook-{TAG}"
WEBHOOK_TOKEN = f"tok-webhook-{TAG}"
SECRETS = (SASL_PASSWORD, REGISTRY_PASSWORD, WEBHOOK_USER, WEBHOOK_PASSWORD, WEBHOOK_TOKEN)
SECRET_ENV = {
    "KAFKA_SASL_MECHANISM": "PLAIN",
    "KAFKA_SASL_USERNAME": "crosscheck",
    "KAFKA_SASL_PASSWORD": SASL_PASSWORD,
    "SCHEMA_REGISTRY_BASIC_AUTH": f"registry-user:{REGISTRY_PASSWORD}",
    "CROSSCHECK_WORKER_BIND": "",  # the default
}


def leaked(text: str) -> list[str]:
    """The secrets that appear in `text` (also percent-encoded or escaped as JSON would)."""
    forms = {s: (s, urllib.parse.quote(s), json.dumps(s)[1:-1]) for s in SECRETS}
    return [s for s, variants in forms.items() if any(v in text for v in variants)]


# -- a webhook receiver that fails once ----------------------------------------------------


@contextlib.contextmanager
def flaky_webhook() -> Iterator[tuple[str, list[str]]]:
    """(URL with user, password and token; the Authorization headers received)."""
    received: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(self.headers.get("Authorization", ""))
            self.send_response(500 if len(received) == 1 else 204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        yield (f"http://{WEBHOOK_USER}:{WEBHOOK_PASSWORD}@127.0.0.1:{port}/hook"
               f"?token={WEBHOOK_TOKEN}"), received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# -- the world: one judged worker ------------------------------------------------------------


@dataclass
class World:
    settings: Settings
    worker: WorkerProcess
    order_id: str
    webhook_calls: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.worker.port}"


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("security")
    settings = replace(load_settings({}), bootstrap_servers=kafka_bootstrap,
                       home=tmp / "home", topic_prefix=f"t{TAG}.", app_id=f"cc-{TAG}",
                       partitions=4)
    topology = Topology(4, settings.topic_prefix, settings.topic_overrides)
    create_topics(admin(settings), topology)
    scenario = rules_scenario(copies=1, seed=5)
    produce(settings, scenario.in_time_order())
    with flaky_webhook() as (hook, calls), running_worker(
            settings, tmp / "worker.log", extra_env=SECRET_ENV,
            extra_args=("--loglevel", "info", "--echo", "--alert-webhook", hook)) as worker:
        progress = Progress(settings, topology)
        try:
            wait_until_judged(worker, progress)
        finally:
            progress.close()
        deadline = 60.0
        while len(calls) < 2 and deadline > 0:  # the failed attempt and its retry
            threading.Event().wait(0.5)
            deadline -= 0.5
        yield World(settings, worker, scenario.lines[0].order_id, calls)


def http_get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return response.status, response.headers.get("Content-Type", ""), \
                response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def raw_get(port: int, target: bytes) -> tuple[int, str, str]:
    """A GET with the request target exactly as given (no client-side quoting)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as conn:
        conn.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Connection: close\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers.get("Content-Type", ""), \
        body.decode(errors="replace")


# -- the tests ------------------------------------------------------------------------------


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the LISTEN sockets on `port` (Linux /proc/net/tcp and tcp6)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            for row in list(f)[1:]:
                local, state = row.split()[1], row.split()[3]
                address, _, hex_port = local.partition(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


def test_the_web_server_listens_on_loopback_only(world: World) -> None:
    assert listening_addresses(world.worker.port) == {"0100007F"}  # 127.0.0.1, nothing else
    health = json.loads(http_get(world.url + "/health")[2])
    assert health["url"] == world.url


def test_no_secret_in_logs_documents_or_status(world: World) -> None:
    assert len(world.webhook_calls) >= 2, "the webhook was not called twice (fail, retry)"
    assert all(call.startswith("Basic ") for call in world.webhook_calls)  # creds were used
    documents = {}
    for path in ("/health", "/metrics", "/api/summary", "/api/windows", "/mismatches?limit=5000",
                 "/", f"/orders/{urllib.parse.quote(world.order_id, safe='')}",
                 "/orders/no-such-order", "/orders/%0A"):
        status, _, body = http_get(world.url + path)
        for _ in range(40):  # routed documents answer 503 "retry" while routing is not ready
            if status != 503:
                break
            threading.Event().wait(0.5)
            status, _, body = http_get(world.url + path)
        assert status in (200, 400, 404), (path, status, body[:500])
        documents[path] = body
    assert json.loads(documents["/api/summary"])["dead_letters"] >= 0
    env = {**env_of(world.settings), **SECRET_ENV}
    for args in (["status", "--json"], ["status"]):
        done = subprocess.run([CROSSCHECK, *args], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        documents[" ".join(args)] = done.stdout + done.stderr
    assert json.loads(documents["status --json"])["group"] == world.settings.app_id
    # the worker's own output; the harness writes its command line (with the webhook URL)
    # into the same file on lines starting with '=== '
    log = "\n".join(line for line in world.worker.log_path.read_text(errors="replace")
                    .splitlines() if not line.startswith("=== "))
    assert "alert webhook http://127.0.0.1:" in log  # the failed attempt was logged
    assert "COMMAND" in log and "OPEN" in log  # --echo wrote the outputs
    documents["worker log"] = log
    found = {name: leaked(text) for name, text in documents.items() if leaked(text)}
    assert not found, f"secrets leaked: {found}"


@pytest.mark.parametrize(("target", "reason"), [
    (b"/orders/%20", "must not be blank"),
    (b"/orders/%09%09", "contains a control character (U+0009"),
    (b"/orders/o%0A1", "contains a control character (U+000A at position 1)"),
    (b"/orders/%00", "contains a control character (U+0000"),
    (b"/orders/%C2%9B", "contains a control character (U+009B"),
    (b"/orders/" + b"x" * 10_000, "is too long"),
    (b"/orders/" + b"o" * 257, "is too long: 257 characters (at most 256)"),
    (b"/orders/%ff", "is not UTF-8 once percent-decoded"),
    (b"/orders/%C3%28", "is not UTF-8 once percent-decoded"),
    (b"/orders/%ED%A0%80", "is not UTF-8 once percent-decoded"),
    (b"/orders/%zz", "invalid percent-encoding"),
    (b"/orders/abc%", "invalid percent-encoding"),
])
def test_invalid_order_ids_get_400_and_a_json_error(world: World, target: bytes,
                                                    reason: str) -> None:
    status, ctype, body = raw_get(world.worker.port, target)
    assert status == 400, (status, body[:300])
    assert ctype.startswith("application/json"), (ctype, body[:300])
    doc = json.loads(body)
    assert doc["error"].startswith(f"not a valid order id: {reason}"), doc
    assert "characters" in doc["order_id_rule"]
    assert "Traceback" not in body and len(body) < 1000


def test_valid_order_ids_still_answer(world: World) -> None:
    quoted = urllib.parse.quote(world.order_id, safe="").encode()
    status, ctype, body = raw_get(world.worker.port, b"/orders/" + quoted)
    assert status == 200 and json.loads(body)["order_id"] == world.order_id
    for target in (b"/orders/no-such-order", b"/orders/%E8%AE%A2%E5%8D%95-1",
                   b"/orders/a%2Fb", b"/orders/" + b"o" * 256):
        status, ctype, body = raw_get(world.worker.port, target)
        assert status == 404 and ctype.startswith("application/json"), (target, body[:200])
        assert "no state for order" in json.loads(body)["error"]


def test_what_the_http_server_refuses_itself(world: World) -> None:
    # beyond the request-line limit (64 KiB) or with bytes HTTP does not allow in a request
    # target, aiohttp answers 400 before any view runs: plain text, no stack trace
    for target in (b"/orders/" + b"x" * 70_000, b"/orders/\xff\xfe", b"/orders/a\x01b"):
        status, _, body = raw_get(world.worker.port, target)
        assert status == 400, (target[:40], status, body[:200])
        assert "Traceback" not in body and len(body) < 2000
    assert world.worker.alive()
