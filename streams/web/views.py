"""The worker's web endpoints, on Faust's web server (--web-bind 127.0.0.1, --web-port).

| path | answers |
|---|---|
| ``/`` | the live dashboard (static HTML + JS, Chart.js served from ``/static``) |
| ``/health`` | readiness, records processed, input lag, watermark and its age per partition, |
|  | each input topic-partition's progress and state, the held commands |
| ``/metrics`` | Prometheus text format (own CollectorRegistry) |
| ``/orders/{order_id}`` | events, pending decisions and mismatches of one order, answered by |
|  | the worker that owns the order's partition (Faust table routing: forwarded) |
| ``/mismatches`` | the latest mismatches *this worker* emitted (``status``, ``type``, |
|  | ``order_id``, ``limit``) |
| ``/api/summary`` | this worker's counters, watermarks, inputs and held commands (JSON, for |
|  | the dashboard) |
| ``/api/windows`` | the last final metrics windows and alerts, answered by the worker that |
|  | runs the metrics aggregator (table routing on the metrics table) |
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import orjson
from aiohttp import ClientError
from faust.web.exceptions import ServiceUnavailable

from streams.clock import wall_ms
from streams.engine import core
from streams.model import MismatchType, Status
from streams.names import METRICS_TABLE, ORDERS_TABLE
from streams.web.documents import health_doc, order_doc, summary_doc, windows_doc
from streams.web.order_path import MAX_REQUEST_LINE, RULE, order_id_from_path
from streams.web.probe import Probe, instrument
from streams.web.prometheus import WorkerMetrics
from streams.web.recent import RecentMismatches
from streams.worker.faust_guard import DOC, FaustCouplingError
from topology.partitioner import partition_for

if TYPE_CHECKING:
    from streams.worker.app import Worker

#: the metrics table's only key; routing on it finds the worker running the aggregator
METRICS_KEY = "state"
MAX_LIMIT = 5000

Handler = Callable[..., Awaitable[Any]]


def static_dir() -> Path:
    """The directory of the dashboard's files (installed as package data)."""
    return Path(str(importlib.resources.files("streams.web") / "static"))


def _json(view: Any, body: Any, status: int = 200) -> Any:
    return view.bytes(orjson.dumps(body), content_type="application/json", status=status,
                      headers={"Cache-Control": "no-store"})


def _error(view: Any, status: int, message: str, **extra: Any) -> Any:
    return _json(view, {"error": message, **extra}, status)


def _int_param(query: Any, name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


class WebState:
    """What the views share: the worker, its probe, metrics and recent mismatches."""

    def __init__(self, worker: Worker, recent: RecentMismatches | None = None,
                 clock: Callable[[], int] = wall_ms) -> None:
        self.worker = worker
        self.clock = clock
        self.probe = Probe(worker, recent, clock)
        self.metrics = WorkerMetrics(self.probe, clock)
        self.probe.batches.observers.append(self.metrics.observe_batch)

    def served_by(self) -> dict[str, Any]:
        return {"worker_id": self.probe.worker_id, "url": self.probe.url}


def register_web(app: Any, worker: Worker) -> WebState:
    """Add the endpoints to the worker's Faust app and hook the worker (see probe.instrument).

    Called once by `crosscheck worker`, after ``create_worker`` and before the app starts.
    Nothing is registered (and the worker is not hooked) when the worker runs without its
    web server.
    """
    state = WebState(worker)
    if not worker.options.web_enabled:
        return state
    instrument(worker, state.probe)
    web = app.web
    _drop_faust_index(web)
    orders_table = app.tables[ORDERS_TABLE]
    metrics_table = app.tables[METRICS_TABLE]
    index_html = (static_dir() / "index.html").read_bytes()

    @_page(app, "/", name="crosscheck-dashboard")
    async def dashboard(view: Any, request: Any) -> Any:
        return view.bytes(index_html, content_type="text/html",
                          headers={"Cache-Control": "no-cache"})

    @_page(app, "/health", name="crosscheck-health")
    async def health(view: Any, request: Any) -> Any:
        body = health_doc(state.probe, state.clock())
        return _json(view, body, 200 if body["ready"] else 503)

    @_page(app, "/metrics", name="crosscheck-metrics")
    async def metrics(view: Any, request: Any) -> Any:
        body, content_type = state.metrics.render(request.headers.get("Accept"))
        return view.bytes(body, headers={"Content-Type": content_type})

    @_page(app, "/api/summary", name="crosscheck-summary")
    async def summary(view: Any, request: Any) -> Any:
        return _json(view, summary_doc(state.probe, state.clock()))

    @_page(app, "/mismatches", name="crosscheck-mismatches")
    async def mismatches(view: Any, request: Any) -> Any:
        query = request.query
        status = query.get("status") or None
        mtype = query.get("type") or None
        if status is not None and status not in Status.__members__:
            return _error(view, 400, f"status must be one of {', '.join(Status)}")
        if mtype is not None and mtype not in MismatchType.__members__:
            return _error(view, 400, f"unknown mismatch type {mtype!r}",
                          types=list(MismatchType))
        try:
            limit = _int_param(query, "limit", 100, 1, MAX_LIMIT)
        except ValueError as exc:
            return _error(view, 400, str(exc))
        found = state.probe.recent.query(status, mtype, query.get("order_id") or None, limit)
        return _json(view, {
            "scope": "worker",
            "note": "only the mismatches this worker emitted (its partitions, since it started); "
                    "the mismatches topic has all of them",
            **state.served_by(),
            "partitions": state.probe.partitions(),
            "capacity": state.probe.recent.capacity,
            "count": len(found),
            "mismatches": found,
        })

    @_page(app, "/orders/{order_id}", name="crosscheck-order")
    @_checked_order_id
    @_routable(app, orders_table)
    @_table_route(app, orders_table, match_info="order_id")
    async def order(view: Any, request: Any, order_id: str) -> Any:
        partition = partition_for(order_id, worker.options.input_partitions)
        if not state.probe.owns(partition):
            return _error(view, 503, f"partition {partition} is not served by this worker "
                          "right now (rebalancing?): retry", order_id=order_id,
                          partition=partition, served_by=state.served_by())
        ctx = worker.runtime.part(partition)
        found = ctx.store.get_order(order_id)
        if found is None:
            return _error(view, 404, f"no state for order {order_id!r}", order_id=order_id,
                          partition=partition, served_by=state.served_by())
        return _json(view, order_doc(core.as_state(found), partition, state.probe.recent,
                                     state.served_by(),
                                     worker.runtime.rules, ctx.engine.watermark))

    @_page(app, "/api/windows", name="crosscheck-windows")
    @_routable(app, metrics_table)
    @_table_route(app, metrics_table, exact_key=METRICS_KEY)
    async def windows(view: Any, request: Any) -> Any:
        try:
            limit = _int_param(request.query, "limit", 60, 0, 10_000)
            alert_limit = _int_param(request.query, "alerts", 50, 0, 10_000)
        except ValueError as exc:
            return _error(view, 400, str(exc))
        return _json(view, windows_doc(worker.recent_windows, worker.recent_alerts,
                                       state.served_by(), limit, alert_limit))

    web.add_static("/static", str(static_dir()), name="crosscheck-static")
    _limit_request_line(web)
    return state


def _checked_order_id(fun: Handler) -> Handler:
    """Answer 400 (JSON) for a path that does not carry a valid order id, before routing."""

    async def checked(view: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            order_id_from_path(request.raw_path)
        except ValueError as exc:
            return _error(view, 400, f"not a valid order id: {exc}", order_id_rule=RULE)
        return await fun(view, request, *args, **kwargs)

    checked.__name__ = getattr(fun, "__name__", "checked")
    checked.__doc__ = fun.__doc__
    return checked


def _limit_request_line(web: Any) -> None:
    """Let request lines up to MAX_REQUEST_LINE bytes reach the views (Faust's aiohttp runner
    keeps its keyword arguments for the server it makes at start)."""
    kwargs = getattr(getattr(web, "_runner", None), "_kwargs", None)
    if not isinstance(kwargs, dict):
        raise FaustCouplingError("the request-line limit cannot apply to this Faust's web "
                                 f"server (no _runner._kwargs dict); see {DOC}")
    kwargs["max_line_size"] = MAX_REQUEST_LINE


def _page(app: Any, path: str, name: str) -> Callable[[Handler], object]:
    """``app.page`` (typed): the function becomes the GET handler of a Faust View."""
    decorator: Callable[[Handler], object] = app.page(path, name=name)
    return decorator


def _table_route(app: Any, table: Any, **how: str) -> Callable[[Handler], Handler]:
    """``app.table_route`` (typed): forward the request to the worker owning the key."""
    decorator: Callable[[Handler], Handler] = app.table_route(table=table, **how)
    return decorator


def _routable(app: Any, table: Any) -> Callable[[Handler], Handler]:
    """Before Faust's table routing runs: make sure the producer knows the table's changelog
    partitions (the router hashes the key with the producer's metadata), and answer 503 while
    the group has not assigned the table yet, instead of a 500."""

    def decorate(fun: Handler) -> Handler:
        async def routed(view: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            topic = table.changelog_topic.get_topic_name()
            try:
                producer = app.producer
                aio = producer._ensure_producer()
                if not aio._metadata.partitions_for_topic(topic):
                    await aio.partitions_for(topic)
            except Exception as exc:  # not started yet
                return _error(view, 503, f"not ready to route requests: {exc}")
            try:
                return await fun(view, request, *args, **kwargs)
            except ServiceUnavailable:
                return _error(view, 503, "no worker owns this key right now (rebalancing?): "
                              "retry")
            except ClientError as exc:
                return _error(view, 502, f"the owning worker did not answer: {exc}")

        routed.__name__ = getattr(fun, "__name__", "routed")
        routed.__doc__ = fun.__doc__
        return routed

    return decorate


def _drop_faust_index(web: Any) -> None:
    """Faust's production index also mounts at ``/`` (``{"status": "OK"}``); the dashboard is
    registered first and wins anyway, but leave no second route behind."""
    manager = getattr(web, "blueprints", None)
    enabled = getattr(manager, "_enabled", None)
    if not isinstance(enabled, list):
        raise FaustCouplingError("Faust's index route cannot be dropped from this Faust's web "
                                 f"server (no blueprints._enabled list); see {DOC}")
    manager_enabled = cast(list[tuple[str, Any]], enabled)
    manager_enabled[:] = [(prefix, bp) for prefix, bp in manager_enabled
                          if "production_index" not in str(bp)]
