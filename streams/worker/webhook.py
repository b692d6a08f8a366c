"""Best-effort delivery of alerts to an HTTP endpoint: `crosscheck worker --alert-webhook URL`.

Each Alert is POSTed as JSON with the contract's field names (section 5) and ISO-8601 times,
by a background task of the worker's event loop:

* ``enqueue`` is synchronous and O(1): it never waits for the network, so a slow or dead
  endpoint never holds up the stream. The queue is bounded; beyond the bound the oldest
  queued alert is dropped (counted in ``dropped``).
* A failed POST (connection error, timeout, HTTP 408/425/429 or 5xx) is retried with
  exponential backoff, at most ``max_attempts`` times in all; other HTTP errors are not
  retried. An alert that is not delivered is counted in ``failed``.
* Log lines name the endpoint without its secrets: no userinfo, query string or fragment
  (``redact``), and never the text of an exception (aiohttp puts the full URL in some).

The alerts stay in the crosscheck.alerts topic regardless: the webhook is a notification,
not the record. Each POST carries the alert's stable alert_id (also in the
``X-Crosscheck-Alert-Id`` header), so a receiver can drop the duplicates a worker restart
may cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
from yarl import URL

from schemas.validation import format_time

log = logging.getLogger("crosscheck.webhook")

#: HTTP statuses worth another attempt (besides every 5xx)
RETRY_STATUSES = frozenset({408, 425, 429})
_TIME_FIELDS = ("window_start", "window_end")
_SOURCE_TIME_FIELDS = ("last_event_time",)


def redact(url: str) -> str:
    """The URL as it may be logged: without userinfo, query string and fragment."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return "<invalid url>"
    if not parsed.is_absolute():
        return "<invalid url>"
    return str(parsed.with_user(None).with_query(None).with_fragment(None))


def check_url(url: str) -> str:
    """The URL if it is an absolute http(s) URL with a host; ValueError (secret-free) if not."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        raise ValueError("not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{redact(url)} is not an http:// or https:// URL with a host")
    return url


def alert_payload(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body of an alert: the contract's fields, times as ISO-8601 UTC (those of
    the source of a SOURCE_STALLED / SOURCE_RECOVERED alert too)."""
    body = dict(alert)
    for name in _TIME_FIELDS:
        value = body.get(name)
        if isinstance(value, int):
            body[name] = format_time(value)
    source = body.get("source")
    if isinstance(source, Mapping):
        body["source"] = {k: format_time(v) if k in _SOURCE_TIME_FIELDS and isinstance(v, int)
                          else v for k, v in source.items()}
    return body


class WebhookSender:
    """POSTs alerts to one URL from a bounded in-memory queue (see the module docstring)."""

    def __init__(self, url: str, *, queue_size: int = 1000, max_attempts: int = 5,
                 backoff: float = 0.5, max_backoff: float = 30.0, timeout: float = 10.0) -> None:
        if queue_size < 1 or max_attempts < 1:
            raise ValueError("queue_size and max_attempts must be at least 1")
        self.url = check_url(url)
        self.safe_url = redact(url)
        self.queue_size = queue_size
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        #: alerts POSTed with a 2xx answer
        self.delivered = 0
        #: alerts given up on (attempts exhausted, or an HTTP error that is not retried)
        self.failed = 0
        #: alerts dropped from a full queue (the oldest ones)
        self.dropped = 0
        #: POSTs repeated after a failure
        self.retries = 0
        self._queue: deque[dict[str, Any]] = deque()
        self._busy = False
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    # -- the stream's side (synchronous, O(1)) ---------------------------------------------

    def enqueue(self, alert: Mapping[str, Any]) -> None:
        """Queue an alert; starts the delivery task when called inside a running loop."""
        if len(self._queue) >= self.queue_size:
            self._queue.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("alert webhook %s: queue full (%d), %d alert(s) dropped so far",
                            self.safe_url, self.queue_size, self.dropped)
        self._queue.append(alert_payload(alert))
        self._ensure_task()
        if self._wakeup is not None:
            self._wakeup.set()

    @property
    def queued(self) -> int:
        """Alerts waiting (not counting the one being delivered)."""
        return len(self._queue)

    def stats(self) -> dict[str, int]:
        """The counters, for status output."""
        return {"delivered": self.delivered, "failed": self.failed, "dropped": self.dropped,
                "retries": self.retries, "queued": self.queued}

    # -- the background task ---------------------------------------------------------------

    def _ensure_task(self) -> None:
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: start() or the next enqueue inside the loop starts it
        self._wakeup = asyncio.Event()
        self._task = loop.create_task(self._run(), name="crosscheck-alert-webhook")

    async def start(self) -> None:
        """Start the delivery task (enqueue does it too)."""
        self._ensure_task()
        if self._wakeup is not None and self._queue:
            self._wakeup.set()

    async def drain(self, timeout: float) -> bool:
        """Wait until every queued alert has been handled; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue or self._busy:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def close(self) -> None:
        """Stop the delivery task (queued alerts are abandoned)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        wakeup = self._wakeup
        assert wakeup is not None
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                if not self._queue:
                    wakeup.clear()
                    await wakeup.wait()
                    continue
                body = self._queue.popleft()
                self._busy = True
                try:
                    await self._deliver(session, body)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # never let one alert stop the task
                    self.failed += 1
                    log.warning("alert webhook %s: alert %s not delivered: %s",
                                self.safe_url, body.get("alert_id"), type(exc).__name__)
                finally:
                    self._busy = False

    async def _deliver(self, session: aiohttp.ClientSession, body: dict[str, Any]) -> None:
        data = orjson.dumps(body)
        alert = str(body.get("alert_id", ""))
        headers = {"Content-Type": "application/json", "X-Crosscheck-Alert-Id": alert}
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with session.post(self.url, data=data, headers=headers) as response:
                    status = response.status
                    await response.read()
                if 200 <= status < 300:
                    self.delivered += 1
                    return
                reason = f"HTTP {status}"
                retry = status >= 500 or status in RETRY_STATUSES
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason, retry = type(exc).__name__, True
            if not retry or attempt == self.max_attempts:
                self.failed += 1
                log.warning("alert webhook %s: alert %s not delivered after %d attempt(s): %s",
                            self.safe_url, alert, attempt, reason)
                return
            delay = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
            self.retries += 1
            log.info("alert webhook %s: alert %s attempt %d failed (%s), retrying in %.1fs",
                     self.safe_url, alert, attempt, reason, delay)
            await asyncio.sleep(delay)


_senders: dict[str, WebhookSender] = {}


def sender_for(url: str) -> WebhookSender:
    """The process's sender for a URL (created on first use, with the default bounds)."""
    sender = _senders.get(url)
    if sender is None:
        sender = _senders[url] = WebhookSender(url)
    return sender
