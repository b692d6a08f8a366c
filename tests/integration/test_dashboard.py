"""The live dashboard at `/`, in headless Chromium, against a real worker and a known scenario.

Chromium loads the page with `--dump-dom --virtual-time-budget`, so the DOM is dumped after
the page's JavaScript has fetched `/api/summary`, `/api/windows` and `/mismatches` and drawn
them; the test reads the figures back from the DOM. Any console message (the page logs
nothing when all is well; a failed script or stylesheet load, an uncaught error or rejection
is reported with console.error by the page itself) fails the test.

Chromium: `CROSSCHECK_CHROMIUM` (a path), else `chromium` / `chromium-browser` /
`google-chrome` on PATH, else, as root on Debian/Ubuntu, `apt-get install -y chromium` is run
once; anywhere else the tests fail with a message saying how to install it.

The scenario puts every order on input partition 0 with a closing order at the end, so each
metrics window is final with all its figures (no other partition can report late).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from schemas.validation import format_time
from streams.clients import admin
from streams.config import Settings, load_settings
from tests.integration.scenarios import (
    FAULTS,
    MINUTE,
    PARTITIONS,
    RULES,
    SECOND,
    T0,
    OrderBuilder,
    Outputs,
    Scenario,
    Template,
    healthy,
    paid_in,
)
from tests.integration.worker_support import (
    Progress,
    WorkerProcess,
    produce,
    running_worker,
    wait_until_judged,
)
from topology.admin import create_topics
from topology.partitioner import partition_for
from topology.topics import Topology

pytestmark = pytest.mark.integration

PARTITION = 0
WINDOW = RULES.metrics_window
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_LOCK = Path(tempfile.gettempdir()) / "crosscheck-chromium-install.lock"
HEADLESS_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--enable-logging=stderr",
                  "--v=0")


# -- chromium -------------------------------------------------------------------------------


def _find_chromium() -> str | None:
    explicit = os.environ.get("CROSSCHECK_CHROMIUM")
    if explicit:
        return explicit
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium() -> str:
    """The Chromium binary; installs Debian's `chromium` with apt-get when root and missing."""
    found = _find_chromium()
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail("the dashboard tests need headless Chromium and it is not installed: "
                    "install it (Debian/Ubuntu: `sudo apt-get update && sudo apt-get install -y "
                    "chromium`) or set CROSSCHECK_CHROMIUM=/path/to/chromium", pytrace=False)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with INSTALL_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time (pytest-xdist, CI jobs)
        found = _find_chromium()
        if found:
            return found
        for args in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
            done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1200,
                                  check=False)
            if done.returncode != 0:
                pytest.fail(f"could not install chromium: `{' '.join(args)}` exited with "
                            f"{done.returncode}:\n{done.stderr[-2000:]}", pytrace=False)
    found = _find_chromium()
    if not found:
        pytest.fail("apt-get installed chromium but no chromium binary is on PATH",
                    pytrace=False)
    return found


@dataclass
class BrowserRun:
    """What one headless Chromium run printed."""

    stdout: str
    stderr: str

    def console(self) -> list[str]:
        """Console messages of the page (Chromium logs them as `INFO:CONSOLE` lines)."""
        return [line for line in self.stderr.splitlines() if ":CONSOLE" in line]


def run_chromium(url: str, *args: str, timeout: float = 120.0) -> BrowserRun:
    """Run headless Chromium once on `url` with a fresh profile; stop all its processes."""
    with tempfile.TemporaryDirectory(prefix="crosscheck-chromium-") as profile:
        cmd = [chromium(), *HEADLESS_FLAGS, f"--user-data-dir={profile}", *args, url]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, start_new_session=True, text=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            pytest.fail(f"chromium did not finish within {timeout:.0f}s:\n{err[-3000:]}")
        finally:
            # the browser's helpers (zygote, renderer, gpu) share its process group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        assert proc.returncode == 0, f"chromium exited with {proc.returncode}:\n{err[-3000:]}"
        return BrowserRun(out, err)


# -- a small DOM ----------------------------------------------------------------------------


@dataclass
class Node:
    """An element of the dumped DOM."""

    tag: str
    attrs: dict[str, str]
    children: list[Node | str]

    def text(self) -> str:
        parts: list[str] = []
        for child in self.children:
            parts.append(child if isinstance(child, str) else " " + child.text() + " ")
        return re.sub(r"\s+", " ", "".join(parts)).strip()

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def by_id(self, ident: str) -> Node:
        for node in self.walk():
            if node.attrs.get("id") == ident:
                return node
        raise AssertionError(f"no element #{ident} in the dashboard")

    def all(self, tag: str) -> list[Node]:
        return [n for n in self.walk() if n.tag == tag]

    def rows(self) -> list[list[str]]:
        """Cell texts of the rows of a table's tbody."""
        body = self.all("tbody")[0]
        return [[td.text() for td in tr.all("td")] for tr in body.all("tr")]


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, [])
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, [])
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_dom(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root


# -- the scenario ---------------------------------------------------------------------------


def _ids_on(partition: int, prefix: str) -> Iterator[str]:
    n = 0
    while True:
        candidate = f"{prefix}-{n}"
        n += 1
        if partition_for(candidate, PARTITIONS) == partition:
            yield candidate


def failed_payment(b: OrderBuilder) -> None:
    b.placed(0).pay("FAILED", 1)


def dashboard_scenario() -> Scenario:
    """Window T0 (:00): 4 healthy orders, a failed payment, AMOUNT_MISMATCH (HIGH),
    DUPLICATE_PAYMENT (CRITICAL), a TCC_EMPTY_ROLLBACK decided in :01 and a reservation paid
    too late (RESERVATION_WITHOUT_PAYMENT opened in :02, then RESOLVED). Window :01: two USD
    orders. A closing healthy order at :04 makes the windows :00, :01 and :02 final."""
    s = Scenario(seed=11)
    ids = _ids_on(PARTITION, "dash")
    plan: list[tuple[str, int, Template]] = [
        *[("ok", T0 + i * 5 * SECOND, healthy) for i in range(4)],
        ("rwp-paid-late", T0 + 20 * SECOND, FAULTS["rwp-paid-late"]),
        ("failed", T0 + 30 * SECOND, failed_payment),
        ("amount", T0 + 35 * SECOND, FAULTS["amount"]),
        ("dup-open", T0 + 40 * SECOND, FAULTS["dup-open"]),
        ("empty-rollback", T0 + 45 * SECOND, FAULTS["empty-rollback"]),
        ("usd", T0 + MINUTE + 10 * SECOND, paid_in("USD", 500)),
        ("usd", T0 + MINUTE + 20 * SECOND, paid_in("USD", 500)),
        ("closing", T0 + 4 * MINUTE, healthy),
    ]
    for kind, start, template in plan:
        s.order(kind, next(ids), start, template)
    assert {partition_for(line.order_id, PARTITIONS) for line in s.lines} == {PARTITION}
    return s


def start_of(t: int) -> int:
    return t - t % WINDOW


def expected_windows(s: Scenario, expected: Outputs) -> list[dict[str, Any]]:
    """Figures of every final window (those ending at or before the final watermark)."""
    final_wm = max(line.record["event_time"] for line in s.lines) - RULES.allowed_lateness
    first = start_of(min(line.record["event_time"] for line in s.lines))
    windows = {w: {"start": w, "placed": 0, "ok": 0, "failed": 0, "gmv": Counter[str](),
                   "opened": 0, "resolved": 0}
               for w in range(first, start_of(final_wm), WINDOW)}
    for line in s.lines:
        r = line.record
        w = windows.get(start_of(r["event_time"]))
        if w is None:
            continue
        if line.topic.value == "orders" and r["type"] == "PLACED":
            w["placed"] += 1
        elif line.topic.value == "payments" and r["type"] == "SUCCEEDED":
            w["ok"] += 1
            w["gmv"][r["currency"]] += r["amount"]
        elif line.topic.value == "payments" and r["type"] == "FAILED":
            w["failed"] += 1
    for m in expected.mismatches:
        if m["status"] == "OPEN" and start_of(m["decided_at"]) in windows:
            windows[start_of(m["decided_at"])]["opened"] += 1
        if m["status"] == "RESOLVED" and start_of(m["resolved_at"]) in windows:
            windows[start_of(m["resolved_at"])]["resolved"] += 1
    return [windows[w] for w in sorted(windows)]


# -- the world ------------------------------------------------------------------------------


@dataclass
class World:
    settings: Settings
    scenario: Scenario
    expected: Outputs
    worker: WorkerProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.worker.port}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())


def _wait_for_windows(world: World, last_start: int, timeout: float = 90.0) -> None:
    want = format_time(last_start)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            doc = world.get("/api/windows?limit=100")
        except urllib.error.HTTPError as exc:
            if exc.code != 503:  # 503: starting, rebalancing or route not known yet
                raise
            time.sleep(0.5)
            continue
        if any(w["window_start"] == want for w in doc["windows"]):
            return
        time.sleep(0.5)
    raise AssertionError(f"window {want} never closed:\n{world.worker.log_tail()}")


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One worker (all partitions) that has judged the dashboard scenario."""
    tmp = tmp_path_factory.mktemp("dashboard")
    tag = uuid.uuid4().hex[:10]
    settings = replace(load_settings({}), bootstrap_servers=kafka_bootstrap, home=tmp / "home",
                       topic_prefix=f"t{tag}.", app_id=f"cc-{tag}", partitions=4)
    topology = Topology(settings.partitions, settings.topic_prefix, settings.topic_overrides)
    create_topics(admin(settings), topology)
    scenario = dashboard_scenario()
    expected = scenario.expected()
    produce(settings, scenario.in_time_order())  # before the worker: no input idles half-way
    with running_worker(settings, tmp / "worker.log") as worker:
        progress = Progress(settings, topology)
        try:
            wait_until_judged(worker, progress)
        finally:
            progress.close()
        w = World(settings, scenario, expected, worker)
        _wait_for_windows(w, expected_windows(scenario, expected)[-1]["start"])
        yield w


# -- tests ----------------------------------------------------------------------------------


def label_of(ms: int) -> str:
    """How the dashboard shows a time: 2026-11-21 10:00:00Z."""
    return format_time(ms)[:19].replace("T", " ") + "Z"


def test_dashboard_shows_the_scenario(world: World) -> None:
    run = run_chromium(world.url + "/", "--dump-dom", "--virtual-time-budget=6000",
                       "--window-size=1280,1800")
    assert not run.console(), "console messages:\n" + "\n".join(run.console())
    dom = parse_dom(run.stdout)
    html = dom.all("html")[0]
    assert "data-js-errors" not in html.attrs
    assert "hidden" in dom.by_id("error").attrs, dom.by_id("error").text()
    body = dom.all("body")[0]
    assert int(body.attrs.get("data-refreshes", "0")) >= 1

    # this worker's counters
    exp = world.expected
    opened = sum(1 for m in exp.mismatches if m["status"] == "OPEN")
    resolved = sum(1 for m in exp.mismatches if m["status"] == "RESOLVED")
    assert dom.by_id("status").text() == "ready"
    assert dom.by_id("tile-events").text() == str(len(world.scenario.lines))
    assert dom.by_id("tile-opened").text() == str(opened)
    assert dom.by_id("tile-resolved").text() == str(resolved)
    assert dom.by_id("tile-commands").text() == str(len(exp.commands))
    assert dom.by_id("tile-dead").text() == "0"
    assert dom.by_id("partitions").text() == "0, 1, 2, 3"
    assert (opened, resolved) == (4, 1)  # the scenario is what its docstring says

    # group-wide windows: newest first, exactly the expected figures
    windows = expected_windows(world.scenario, exp)
    assert len(windows) == 3
    rows = dom.by_id("windows").rows()
    shown = {r[0]: r for r in rows}
    for w in windows:
        ok, failed = w["ok"], w["failed"]
        rate = f"{100 * ok / (ok + failed):.1f}%" if ok + failed else "-"
        gmv = ", ".join(f"{a} {c}" for c, a in sorted(w["gmv"].items())) or "0"
        label = label_of(w["start"])
        assert shown[label] == [label, str(w["placed"]), str(ok), str(failed), rate, gmv,
                                str(w["opened"]), str(w["resolved"]), "0"], rows
    first, second = (label_of(w["start"]) for w in windows[:2])
    assert shown[first][4:6] == ["87.5%", "20500 CNY"]
    assert shown[second][4:6] == ["100.0%", "1000 USD"]
    assert "hidden" in dom.by_id("windows-empty").attrs

    # charts got their data
    assert int(dom.by_id("chart-success").attrs["data-points"]) == 3  # 06:02: one late payment
    assert int(dom.by_id("chart-gmv").attrs["data-points"]) >= 3
    assert int(dom.by_id("chart-mismatches").attrs["data-points"]) >= 2

    # open mismatches of this worker, each linked to its order
    still_open = {m["mismatch_id"]: m for m in exp.mismatches if m["status"] == "OPEN"}
    for m in exp.mismatches:
        if m["status"] == "RESOLVED":
            still_open.pop(m["mismatch_id"], None)
    assert dom.by_id("open-count").text() == str(len(still_open))
    open_rows = dom.by_id("open").rows()
    assert sorted((r[1], r[3]) for r in open_rows) == \
        sorted((m["type"], m["order_id"]) for m in still_open.values())
    links = {a.attrs["href"] for a in dom.by_id("open").all("a")}
    assert links == {f"/orders/{m['order_id']}" for m in still_open.values()}

    # alerts: one per HIGH/CRITICAL mismatch of a final window
    alert_rows = dom.by_id("alerts").rows()
    alerting = sorted(m["type"] for m in exp.mismatches
                      if m["status"] == "OPEN" and m["severity"] in ("HIGH", "CRITICAL"))
    assert sorted(r[3] for r in alert_rows) == alerting == ["AMOUNT_MISMATCH",
                                                            "DUPLICATE_PAYMENT"]

    # inputs: partition 0's progress per topic is the scenario's last event time on it
    topology = Topology(world.settings.partitions, world.settings.topic_prefix,
                        world.settings.topic_overrides)
    last: dict[str, int] = {}
    for line in world.scenario.lines:
        name = topology.name(line.topic)
        last[name] = max(last.get(name, 0), line.record["event_time"])
    inputs = {(r[0], r[1]): r for r in dom.by_id("inputs").rows()}
    for name, t in last.items():
        row = inputs[(str(PARTITION), name)]
        assert row[2] == label_of(t) and (row[3] == "-" or row[3].isdigit()), row
        assert row[4] in ("active", "quiet", "stalled"), row  # nothing released
    # held commands: the panel's count is the worker's
    held = world.get("/health")["held_commands"]["count"]
    assert dom.by_id("held-count").text() == str(held)
    assert len(dom.by_id("held").rows()) == min(held, 10)
    assert ("hidden" in dom.by_id("held-empty").attrs) == (held > 0)


def test_order_link_answers(world: World) -> None:
    """The dashboard's order links lead to the order's joined state."""
    doc = world.get("/mismatches?status=OPEN&type=DUPLICATE_PAYMENT")
    [m] = doc["mismatches"]
    order = world.get(f"/orders/{m['order_id']}")
    assert [x["mismatch_id"] for x in order["mismatches"]] == [m["mismatch_id"]]
    assert order["mismatches"][0]["status"] == "OPEN"
    assert order["open_mismatches"] == 1
    # its events are evicted once the watermark is past all its decisions: the ledger stays
    assert order["history_evicted"] or {e["type"] for e in order["events"]} >= {"SUCCEEDED"}
    closing = world.scenario.lines[-1].order_id
    assert world.scenario.kinds[closing] == "closing"
    doc = world.get(f"/orders/{closing}")
    assert {e["source"] for e in doc["events"]} == {"orders", "inventory", "payments",
                                                    "shipping"}
    assert doc["mismatches"] == [] and doc["history_evicted"] is False


def test_dashboard_screenshot(world: World, tmp_path: Path) -> None:
    shot = tmp_path / "dashboard.png"
    run = run_chromium(world.url + "/", f"--screenshot={shot}", "--virtual-time-budget=6000",
                       "--window-size=1280,1600", "--hide-scrollbars")
    assert not run.console(), "console messages:\n" + "\n".join(run.console())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    assert (width, height) == (1280, 1600)
    assert len(data) > 20_000  # a rendered page, not a blank image
