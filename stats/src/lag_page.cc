// The live lag page served at / by the metrics endpoint: one self-contained HTML document
// (inline CSS and JavaScript, no external script, font or image, no build step). Every second
// it fetches /stats.json (stats_json()), keeps the last five minutes of readings in the
// browser, and draws per projection, as inline SVG:
//   - events behind the head and time behind (lag estimates, as in `sluice stat`);
//   - append→applied latency percentiles (p50, p90, p99, p99.9) of the events applied in the
//     trailing 10 s, from the difference of two readings of the histogram buckets — so a
//     slow minute shows up as it happens, not diluted by everything since the engine started.
// A table gives the latest figures. The DOM carries what a test checks: #updates (readings
// drawn), #status, and per projection a row tr.projection[data-name] whose cells have
// data-field attributes (tests: scripts/lag-page-test.sh opens it in headless Chromium).
#include <string_view>

#include "sluice/stats/metrics_server.h"

namespace sluice {
namespace {

constexpr std::string_view kPage = R"sluice_page(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice lag</title>
<style>
  body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 16px 24px; color: #1d232a; background: #fafbfc; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  h2 { font-size: 16px; margin: 18px 0 6px; }
  #status { color: #57606a; margin-bottom: 12px; }
  #status.down { color: #b3261e; font-weight: 600; }
  table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  th, td { padding: 4px 10px; text-align: right; border-bottom: 1px solid #e4e7eb; font-variant-numeric: tabular-nums; }
  th { background: #f0f2f5; font-weight: 600; }
  td:first-child, th:first-child { text-align: left; }
  tr.alert td { background: #fdecea; }
  .charts { display: flex; flex-wrap: wrap; gap: 10px; }
  .chart { background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  svg text { font: 11px system-ui, sans-serif; fill: #57606a; }
  svg .title { font-weight: 600; fill: #1d232a; }
  svg .axis { stroke: #c9ced6; stroke-width: 1; }
  svg polyline { fill: none; stroke-width: 1.6; }
  .muted { color: #8a939c; }
</style>
</head>
<body>
<h1>Sluice — projection lag</h1>
<div id="status">waiting for the first reading of <code>stats.json</code>…</div>
<div>readings drawn: <span id="updates">0</span> · <span id="engine" class="muted"></span></div>
<h2>Now</h2>
<table id="table">
  <thead><tr><th>projection</th><th>state</th><th>events behind</th><th>time behind</th><th>applied</th>
  <th>p50 (10 s)</th><th>p99 (10 s)</th><th>p99.9 (10 s)</th><th>max since start</th><th>dead letters</th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<div id="panels"></div>
<script>
"use strict";
const HISTORY_S = 300;      // drawn: the last five minutes
const PCT_WINDOW_S = 10;    // latency percentiles of the events applied in the trailing 10 s
const POLL_MS = 1000;
const COLORS = { p50: "#2e7d32", p90: "#1565c0", p99: "#ef6c00", p999: "#c62828", events: "#6a1b9a", time: "#00838f" };
const history = [];         // { t: seconds, s: reading, lat: { name: percentiles | null } }
let updates = 0;

function esc(v) {
  return String(v).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function count(n) { return Number(n).toLocaleString("en-US"); }
function dur(s) {
  if (s === null || s === undefined || !isFinite(s)) return "–";
  if (s === 0) return "0";
  if (s < 1e-3) return (s * 1e6).toFixed(s < 1e-5 ? 2 : 1) + " µs";
  if (s < 1) return (s * 1e3).toFixed(s < 1e-2 ? 2 : 1) + " ms";
  return s.toFixed(2) + " s";
}
// Percentiles of the events applied between two readings of one histogram (bucket counts
// since start: their difference), each the midpoint of its bucket.
function windowPercentiles(now, before) {
  if (!now) return null;
  const old = new Map();
  if (before) for (const [lo, , n] of before.buckets) old.set(lo, n);
  const d = [];
  let total = 0;
  for (const [lo, hi, n] of now.buckets) {
    const k = n - (old.get(lo) || 0);
    if (k > 0) { d.push([lo, hi, k]); total += k; }
  }
  if (total === 0) return null;
  const q = p => {
    const rank = Math.max(1, Math.ceil(p / 100 * total));
    let c = 0;
    for (const [lo, hi, k] of d) { c += k; if (c >= rank) return (lo + hi) / 2 * 1e-9; }
    return d[d.length - 1][1] * 1e-9;
  };
  return { count: total, p50: q(50), p90: q(90), p99: q(99), p999: q(99.9) };
}
function niceMax(v) {
  if (!(v > 0)) return 1;
  const e = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * e) return m * e;
  return 10 * e;
}
// An inline SVG line chart of the last `span` seconds (up to HISTORY_S);
// series: [{label, color, points: [[age_s, v]]}].
function chart(title, series, fmt, span) {
  const W = 380, H = 160, L = 64, R = 8, T = 20, B = 34;
  let ymax = 0;
  for (const s of series) for (const p of s.points) ymax = Math.max(ymax, p[1]);
  ymax = niceMax(ymax);
  const x = a => L + (1 - a / span) * (W - L - R);
  const y = v => T + (1 - v / ymax) * (H - T - B);
  let out = `<svg class="chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">`;
  out += `<text class="title" x="${L}" y="13">${esc(title)}</text>`;
  out += `<line class="axis" x1="${L}" y1="${T}" x2="${L}" y2="${H - B}"/><line class="axis" x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}"/>`;
  out += `<text x="${L - 4}" y="${T + 4}" text-anchor="end">${esc(fmt(ymax))}</text><text x="${L - 4}" y="${H - B}" text-anchor="end">0</text>`;
  const spanText = span >= 120 ? "−" + Math.round(span / 60) + " min" : "−" + Math.round(span) + " s";
  out += `<text x="${L}" y="${H - B + 13}">${spanText}</text><text x="${W - R}" y="${H - B + 13}" text-anchor="end">now</text>`;
  let lx = L;
  for (const s of series) {
    out += `<text x="${lx}" y="${H - 4}" style="fill:${s.color};font-weight:600">— ${esc(s.label)}</text>`;
    lx += 20 + 7 * s.label.length;
  }
  for (const s of series) {
    if (s.points.length === 0) continue;
    const pts = s.points.map(p => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    out += `<polyline data-series="${esc(s.label)}" points="${pts}" style="stroke:${s.color}"/>`;
  }
  return out + "</svg>";
}
function render(latest) {
  const now = history[history.length - 1].t;
  const drawn = history.filter(h => now - h.t <= HISTORY_S);
  // The time axis: the last five minutes, or less while the page has been open for less
  // (at least 10 s).
  const span = Math.min(HISTORY_S, Math.max(10, drawn.length ? now - drawn[0].t : 0));
  const up = latest.up;
  const st = document.getElementById("status");
  st.className = up ? "" : "down";
  st.textContent = (up ? "engine up" : "engine down (heartbeat " + dur(latest.heartbeat_age_s) + " old)") +
      " · head position " + count(latest.head_position) + " · updated " + new Date(latest.now_ns / 1e6).toLocaleTimeString();
  document.getElementById("engine").textContent = "pid " + latest.pid + " · " + latest.log_dir;
  document.getElementById("updates").textContent = String(updates);
  let rows = "", panels = "";
  for (const p of latest.projections) {
    const lat = history[history.length - 1].lat[p.name];
    rows += `<tr class="projection${p.alert_active ? " alert" : ""}" data-name="${esc(p.name)}">` +
      `<td data-field="name">${esc(p.name)}</td><td data-field="state">${esc(p.state)}</td>` +
      `<td data-field="events_behind">${count(p.events_behind)}</td><td data-field="time_behind">${dur(p.time_behind_s)}</td>` +
      `<td data-field="events_applied">${count(p.events_applied)}</td>` +
      `<td data-field="p50">${lat ? dur(lat.p50) : "–"}</td><td data-field="p99">${lat ? dur(lat.p99) : "–"}</td>` +
      `<td data-field="p999">${lat ? dur(lat.p999) : "–"}</td><td data-field="max">${dur(p.latency.max_s)}</td>` +
      `<td data-field="dead_letters">${count(p.dead_letters)}</td></tr>`;
    const series = (key, label, color) => ({ label, color, points: drawn.filter(h => h.lat[p.name]).map(h => [now - h.t, h.lat[p.name][key]]) });
    const of = (f, label, color) => ({ label, color, points: drawn.map(h => {
      const q = h.s.projections.find(o => o.name === p.name);
      return q ? [now - h.t, f(q)] : null;
    }).filter(v => v) });
    panels += `<h2>${esc(p.name)}</h2><div class="charts" data-projection="${esc(p.name)}">` +
      chart("events behind", [of(q => q.events_behind, "events behind", COLORS.events)], v => count(v), span) +
      chart("time behind", [of(q => q.time_behind_s, "time behind", COLORS.time)], dur, span) +
      chart("append→applied latency, trailing " + PCT_WINDOW_S + " s",
            [series("p50", "p50", COLORS.p50), series("p90", "p90", COLORS.p90),
             series("p99", "p99", COLORS.p99), series("p999", "p99.9", COLORS.p999)], dur, span) +
      "</div>";
  }
  if (latest.projections.length === 0) rows = `<tr><td colspan="10" class="muted">no projections in the stats file</td></tr>`;
  document.getElementById("rows").innerHTML = rows;
  document.getElementById("panels").innerHTML = panels;
}
async function poll() {
  try {
    const r = await fetch("stats.json", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const s = await r.json();
    const t = s.now_ns / 1e9;
    // The reading PCT_WINDOW_S ago (or the oldest kept): the base of the window's percentiles.
    let base = null;
    for (const h of history) { if (h.t <= t - PCT_WINDOW_S) base = h; else break; }
    if (!base && history.length) base = history[0];
    const lat = {};
    for (const p of s.projections) {
      const before = base ? base.s.projections.find(o => o.name === p.name) : null;
      lat[p.name] = windowPercentiles(p.histogram, before ? before.histogram : null);
    }
    history.push({ t, s, lat });
    while (history.length && history[0].t < t - HISTORY_S - PCT_WINDOW_S) history.shift();
    updates += 1;
    render(s);
  } catch (e) {
    const st = document.getElementById("status");
    st.className = "down";
    st.textContent = "cannot read stats.json: " + e.message + " (retrying every second)";
  }
  setTimeout(poll, POLL_MS);
}
poll();
</script>
</body>
</html>
)sluice_page";

}  // namespace

std::string_view lag_page_html() noexcept { return kPage; }

}  // namespace sluice
