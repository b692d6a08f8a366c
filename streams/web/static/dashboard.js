/* crosscheck dashboard: polls the worker's JSON endpoints every 2 s and redraws.
 *
 *   /api/summary            this worker's counters, partitions, watermarks, inputs and held
 *                           commands
 *   /api/windows            group-wide final metrics windows and alerts (routed by the worker)
 *   /mismatches?status=OPEN the open mismatches this worker emitted
 *
 * Chart.js (window.Chart) is served locally from /static; no CDN, no build step.
 */
"use strict";

(function () {
  const POLL_MS = 2000;
  const WINDOWS = 60;
  const TYPE_COLORS = {
    RESERVATION_WITHOUT_PAYMENT: "#4e79a7",
    PAYMENT_WITHOUT_RESERVATION: "#f28e2b",
    PAID_NOT_SHIPPED: "#76b7b2",
    SHIPPED_WITHOUT_PAYMENT: "#e15759",
    DUPLICATE_PAYMENT: "#b07aa1",
    AMOUNT_MISMATCH: "#edc948",
    OVERSHIPMENT: "#59a14f",
    REFUND_WITHOUT_RELEASE: "#ff9da7",
    TCC_EMPTY_ROLLBACK: "#9c755f",
    TCC_HANGING: "#bab0ac",
    PAYMENT_NOT_APPLIED: "#a0cbe8",
    CANCELLED_BUT_CHARGED: "#d37295",
    CANCELLED_BUT_RESERVED: "#8cd17d",
    CANCELLED_BUT_SHIPPED: "#ffbe7d",
    PAID_WITHOUT_PAYMENT: "#499894",
  };
  const CURRENCY_COLORS = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2"];

  const $ = (id) => document.getElementById(id);
  const charts = {};

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      if (cell instanceof Node) td.appendChild(cell);
      else td.textContent = cell === null || cell === undefined ? "" : String(cell);
      tr.appendChild(td);
    }
    return tr;
  }

  function fill(tableId, rows) {
    const body = $(tableId).querySelector("tbody");
    body.replaceChildren(...rows);
  }

  function sum(obj) {
    return Object.values(obj || {}).reduce((a, b) => a + b, 0);
  }

  function when(iso) {
    return iso ? iso.slice(0, 19).replace("T", " ") + "Z" : "-";
  }

  function windowLabel(iso) {
    return iso.slice(11, 16);
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "-";
    const a = Math.abs(seconds);
    const sign = seconds < 0 ? "-" : "";
    if (a < 120) return sign + a.toFixed(1) + " s";
    if (a < 7200) return sign + (a / 60).toFixed(1) + " min";
    if (a < 172800) return sign + (a / 3600).toFixed(1) + " h";
    return sign + (a / 86400).toFixed(1) + " d";
  }

  function rate(r) {
    return r === null || r === undefined ? "-" : (r * 100).toFixed(1) + "%";
  }

  function money(gmv) {
    const parts = Object.entries(gmv || {}).map(([cur, amount]) => amount + " " + cur);
    return parts.length ? parts.join(", ") : "0";
  }

  function orderLink(orderId) {
    return el("a", orderId, { href: "/orders/" + encodeURIComponent(orderId) });
  }

  // -- charts ------------------------------------------------------------------------------

  function makeChart(id, type, yOptions, stacked) {
    if (typeof window.Chart === "undefined") return null;
    return new window.Chart($(id), {
      type: type,
      data: { labels: [], datasets: [] },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
        scales: {
          x: { stacked: !!stacked },
          y: Object.assign({ stacked: !!stacked, beginAtZero: true }, yOptions || {}),
        },
      },
    });
  }

  function setChart(id, labels, datasets) {
    const chart = charts[id];
    let points = 0;
    for (const d of datasets) points += d.data.filter((v) => v !== null && v !== 0).length;
    $(id).dataset.points = String(points);
    $(id).dataset.labels = String(labels.length);
    if (!chart) return;
    chart.data.labels = labels;
    chart.data.datasets = datasets;
    chart.update("none");
  }

  function drawCharts(windows) {
    const labels = windows.map((w) => windowLabel(w.window_start));
    const types = new Set();
    const currencies = new Set();
    for (const w of windows) {
      Object.keys(w.mismatches_opened || {}).forEach((t) => types.add(t));
      Object.keys(w.gmv || {}).forEach((c) => currencies.add(c));
    }
    setChart("chart-mismatches", labels, [...types].sort().map((t) => ({
      label: t,
      data: windows.map((w) => (w.mismatches_opened || {})[t] || 0),
      backgroundColor: TYPE_COLORS[t] || "#888",
      stack: "opened",
    })));
    setChart("chart-success", labels, [{
      label: "payment success rate (%)",
      data: windows.map((w) => (w.payment_success_rate === null || w.payment_success_rate === undefined
        ? null : Math.round(w.payment_success_rate * 1000) / 10)),
      borderColor: "#1f883d",
      backgroundColor: "#1f883d",
      spanGaps: true,
      tension: 0.2,
    }]);
    setChart("chart-gmv", labels, [...currencies].sort().map((c, i) => ({
      label: c,
      data: windows.map((w) => (w.gmv || {})[c] || 0),
      borderColor: CURRENCY_COLORS[i % CURRENCY_COLORS.length],
      backgroundColor: CURRENCY_COLORS[i % CURRENCY_COLORS.length],
      tension: 0.2,
    })));
  }

  // -- panels ------------------------------------------------------------------------------

  function drawSummary(s) {
    const badge = $("status");
    badge.textContent = s.ready ? "ready" : s.status;
    badge.className = "badge " + (s.ready ? "ok" : "bad");
    $("worker").textContent = "worker " + s.worker_id + " at " + s.url + " (group " + s.app_id + ")";
    $("partitions").textContent = s.partitions.length ? s.partitions.join(", ") : "none";
    $("tile-events").textContent = String(sum(s.events));
    $("tile-opened").textContent = String(sum(s.mismatches_opened));
    $("tile-resolved").textContent = String(s.mismatches_resolved);
    $("tile-commands").textContent = String(sum(s.commands));
    $("tile-dead").textContent = String(s.dead_letters);
    const ages = s.watermarks.map((w) => w.age_seconds).filter((a) => a !== null);
    $("tile-wm-age").textContent = ages.length ? age(Math.max(...ages)) : "-";
    fill("by-type", Object.entries(s.mismatches_opened).map(([t, n]) => row([t, n])));
    fill("watermarks", s.watermarks.map((w) => row([w.partition, when(w.watermark),
      age(w.age_seconds)])));
    fill("rule-watermarks", (s.rule_watermarks || []).map((g) => row([g.partition,
      g.inputs.join(", "), g.rules.length + " rules", when(g.watermark)])));
    drawInputs(s.inputs || []);
    drawHeld(s.held_commands || { count: 0, oldest: [] });
  }

  function drawInputs(inputs) {
    fill("inputs", inputs.map((i) => {
      const cls = i.state.replace(" ", "-");
      const tr = row([i.partition, i.topic, when(i.progress),
        i.lag === null || i.lag === undefined ? "-" : i.lag,
        el("span", i.state, { class: "state-" + cls }), age(i.for_seconds)]);
      tr.className = "input-" + cls;
      return tr;
    }));
  }

  function drawHeld(held) {
    $("held-count").textContent = String(held.count);
    fill("held", held.oldest.map((h) => row([
      when(h.decided_at), h.type, orderLink(h.order_id), h.waits_for.join(", "),
      age(h.held_seconds),
    ])));
    $("held-empty").hidden = held.count > 0;
  }

  function drawWindows(doc) {
    $("windows-owner").textContent = doc.served_by.url + " (worker " + doc.served_by.worker_id + ")";
    const windows = doc.windows.slice(-WINDOWS);
    drawCharts(windows);
    const newest = windows.slice().reverse().slice(0, 15);
    fill("windows", newest.map((w) => row([
      when(w.window_start), w.orders_placed, w.payments_succeeded, w.payments_failed,
      rate(w.payment_success_rate), money(w.gmv), sum(w.mismatches_opened),
      w.mismatches_resolved, w.dead_letters,
    ])));
    $("windows-empty").hidden = windows.length > 0;
    fill("alerts", doc.alerts.slice(0, 20).map((a) => {
      const severity = el("span", a.severity, { class: "sev-" + a.severity });
      if (a.source) {
        // SOURCE_STALLED / SOURCE_RECOVERED: wall-clock times, an input topic, no orders
        const s = a.source;
        return row([when(a.window_end), a.kind, severity,
          s.topic + " (partitions " + s.partitions.join(",") + ")", a.count,
          "last event " + when(s.last_event_time) + ", " +
          (a.kind === "SOURCE_RECOVERED" ? "recovered after " : "stalled ") +
          age(s.stalled_ms / 1000)]);
      }
      const orders = document.createElement("span");
      a.sample_order_ids.forEach((id, i) => {
        if (i) orders.appendChild(document.createTextNode(" "));
        orders.appendChild(orderLink(id));
      });
      return row([when(a.window_start), a.kind, severity, a.mismatch_type, a.count, orders]);
    }));
  }

  function drawOpen(doc) {
    $("open-count").textContent = String(doc.count);
    fill("open", doc.mismatches.map((m) => row([
      when(m.decided_at), m.type, el("span", m.severity, { class: "sev-" + m.severity }),
      orderLink(m.order_id), m.subject_id, m.command_id ? m.command_id.slice(0, 12) : "",
    ])));
  }

  // -- polling -----------------------------------------------------------------------------

  async function getJson(path) {
    const response = await fetch(path, { cache: "no-store" });
    if (!response.ok) throw new Error(path + ": HTTP " + response.status);
    return response.json();
  }

  async function refresh() {
    const problems = [];
    const [summary, windows, open] = await Promise.all([
      getJson("/api/summary").catch((e) => { problems.push(e.message); return null; }),
      getJson("/api/windows?limit=" + WINDOWS + "&alerts=20")
        .catch((e) => { problems.push(e.message); return null; }),
      getJson("/mismatches?status=OPEN&limit=50")
        .catch((e) => { problems.push(e.message); return null; }),
    ]);
    if (summary) drawSummary(summary);
    if (windows) drawWindows(windows);
    if (open) drawOpen(open);
    const error = $("error");
    error.hidden = problems.length === 0;
    error.textContent = problems.length ? "Could not refresh: " + problems.join("; ") : "";
    if (!summary) {
      $("status").textContent = "unreachable";
      $("status").className = "badge bad";
    }
    $("updated").textContent = new Date().toISOString().slice(11, 19) + "Z";
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
  }

  function start() {
    charts["chart-mismatches"] = makeChart("chart-mismatches", "bar", { ticks: { precision: 0 } }, true);
    charts["chart-success"] = makeChart("chart-success", "line", { max: 100 });
    charts["chart-gmv"] = makeChart("chart-gmv", "line");
    if (!charts["chart-success"]) {
      const error = $("error");
      error.hidden = false;
      error.textContent = "Chart.js did not load (/static/chart.umd.min.js): charts are off.";
    }
    const loop = () => refresh().finally(() => setTimeout(loop, POLL_MS));
    loop();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
