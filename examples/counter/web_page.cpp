// The live page of `raftkit-counter-demo --web`: plain HTML, CSS and JS, all
// inline (no build step, no external asset). It polls /api/state four times a
// second and draws the nodes, the counter, a chart of increments per second
// with the leader of each moment under it, and the timeline; its buttons POST
// /api/node/<id>/<verb> with the run's token. Every text from the server is
// set with textContent, never parsed as HTML. Element ids the browser test
// (tests/integration/live_page_test.py) relies on: node-<id> (attributes
// data-role and data-state), kill-<id>, pause-<id>, resume-<id>,
// restart-<id>, value-<id> (and term-, commit-, applied-, last_index-),
// counter, rate, leader (data-id), failover, timeline.
#include <string>

#include "web_demo.hpp"

namespace raftkit::counter {

namespace {

constexpr const char* kHead = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>raftkit · live replicated counter</title>
<style>
:root { --bg: #f5f6f8; --fg: #1d2330; --mute: #6b7280; --line: #e2e5ea; --card: #fff;
        --n1: #4e79a7; --n2: #f28e2b; --n3: #59a14f; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       background: var(--bg); color: var(--fg); }
header { padding: 12px 24px; background: #1d2330; color: #fff; display: flex; align-items: baseline;
         gap: 18px; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; font-weight: 600; }
header .sub { color: #aab2c0; font-size: 13px; }
#error { color: #fca5a5; font-size: 13px; margin-left: auto; }
main { padding: 14px 24px 24px; max-width: 1280px; }
.stats { display: grid; grid-template-columns: repeat(5, 1fr); gap: 12px; }
.stat, .node, .panel { background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
.stat { padding: 9px 14px; }
.k { color: var(--mute); font-size: 11.5px; text-transform: uppercase; letter-spacing: .05em; }
.stat .v { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; white-space: nowrap; }
.stat .v.small { font-size: 15px; padding-top: 8px; }
.stat .note { color: var(--mute); font-size: 12px; }
.nodes { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; margin-top: 12px; }
.node { padding: 10px 14px 12px; border-top: 4px solid var(--c); }
.node h2 { margin: 0 0 6px; font-size: 16px; display: flex; justify-content: space-between; align-items: center; }
.node h2 .addr { color: var(--mute); font-size: 12px; font-weight: 400; margin-left: 8px; }
.badge { font-size: 11.5px; padding: 2px 9px; border-radius: 10px; color: #fff; background: #9ca3af;
         text-transform: uppercase; letter-spacing: .04em; }
.badge.leader { background: #16a34a; } .badge.follower { background: #2563eb; }
.badge.candidate, .badge.pre-candidate { background: #d97706; } .badge.paused { background: #7c3aed; }
.badge.stopped { background: #dc2626; } .badge.restarting { background: #0891b2; }
.node table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
.node td { padding: 1px 0; } .node td + td { text-align: right; font-weight: 600; }
.node.stale td + td { color: #a3a9b3; }
.diag { color: #b45309; font-size: 12px; min-height: 17px; }
.buttons { display: flex; gap: 6px; margin-top: 8px; }
button { flex: 1; padding: 5px 0; border: 1px solid var(--line); border-radius: 6px; background: #fff;
         cursor: pointer; font: inherit; }
button:hover:not(:disabled) { background: #eef2f7; }
button:disabled { color: #c0c5cd; cursor: default; }
button.kill:not(:disabled) { color: #b91c1c; border-color: #f3b4b4; }
.panel { padding: 10px 14px; margin-top: 12px; }
.panel .k { display: flex; gap: 14px; align-items: center; margin-bottom: 6px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px;
            vertical-align: -1px; }
canvas { width: 100%; height: 170px; display: block; }
#timeline { list-style: none; margin: 0; padding: 0; max-height: 230px; overflow: auto;
            font-variant-numeric: tabular-nums; }
#timeline li { padding: 3px 0; border-bottom: 1px solid #f0f2f5; }
#timeline .t { color: var(--mute); display: inline-block; width: 72px; }
#timeline li.kill, #timeline li.pause { color: #b91c1c; }
#timeline li.failover { font-weight: 600; }
</style>
</head>
<body>
<header>
  <h1>raftkit · live replicated counter</h1>
  <span class="sub">3 raftkit-counter-server processes on 127.0.0.1 · mutual TLS 1.3 ·
    <span id="clients"></span> clients incrementing without pause</span>
  <span id="error"></span>
</header>
<main>
  <div class="stats">
    <div class="stat"><div class="k">Counter</div><div class="v" id="counter">–</div></div>
    <div class="stat"><div class="k">Increments / s</div><div class="v" id="rate">–</div></div>
    <div class="stat"><div class="k">Leader</div><div class="v" id="leader" data-id="0">–</div></div>
    <div class="stat"><div class="k">Last failover</div><div class="v" id="failover">–</div>
      <div class="note" id="resumed"></div></div>
    <div class="stat"><div class="k">Client outcomes</div><div class="v small" id="outcomes">–</div>
      <div class="note">unknown: sent to a node that died before it answered</div></div>
  </div>
  <div class="nodes" id="nodes"></div>
  <div class="panel">
    <div class="k"><span>Increments per second, last 60 s · leader below</span>
      <span class="legend"><i style="background:var(--n1)"></i>node 1 <i style="background:var(--n2)"></i>node 2
        <i style="background:var(--n3)"></i>node 3 <i style="background:#d6d9de"></i>none</span></div>
    <canvas id="chart"></canvas>
  </div>
  <div class="panel"><div class="k">Timeline</div><ul id="timeline"></ul></div>
</main>
)HTML";

constexpr const char* kScript = R"JS(
const COLORS = { 1: "#4e79a7", 2: "#f28e2b", 3: "#59a14f" };
const $ = (id) => document.getElementById(id);
const fmt = (n) => Number(n).toLocaleString("en-US");
const cards = {};
let last = null;

function row(table, label, id) {
  const tr = table.insertRow();
  tr.insertCell().textContent = label;
  const td = tr.insertCell();
  td.id = id;
  return td;
}

function card(id) {
  const div = document.createElement("div");
  div.className = "node";
  div.id = "node-" + id;
  div.style.setProperty("--c", COLORS[id] || "#888");
  const h = document.createElement("h2");
  const name = document.createElement("span");
  name.textContent = "node " + id;
  const addr = document.createElement("span");
  addr.className = "addr";
  name.appendChild(addr);
  const badge = document.createElement("span");
  badge.className = "badge";
  h.append(name, badge);
  const table = document.createElement("table");
  const c = { div, addr, badge };
  for (const [key, label] of [["proc", "process"], ["term", "term"], ["commit", "commit index"],
                              ["applied", "applied index"], ["last_index", "last log index"],
                              ["value", "counter on this node"]])
    c[key] = row(table, label, key + "-" + id);
  c.diag = document.createElement("div");
  c.diag.className = "diag";
  const buttons = document.createElement("div");
  buttons.className = "buttons";
  for (const verb of ["kill", "pause", "resume", "restart"]) {
    const b = document.createElement("button");
    b.id = verb + "-" + id;
    b.className = verb;
    b.textContent = verb[0].toUpperCase() + verb.slice(1);
    b.addEventListener("click", () => act(id, verb));
    buttons.appendChild(b);
    c[verb] = b;
  }
  div.append(h, table, c.diag, buttons);
  $("nodes").appendChild(div);
  return c;
}

function renderNode(n) {
  const c = cards[n.id] || (cards[n.id] = card(n.id));
  c.div.dataset.role = n.role;
  c.div.dataset.state = n.state;
  c.div.classList.toggle("stale", !n.reachable);
  c.addr.textContent = n.address;
  c.badge.textContent = n.role;
  c.badge.className = "badge " + n.role;
  c.proc.textContent = n.state === "stopped" ? "not running" : n.state + (n.pid > 0 ? ", pid " + n.pid : "");
  for (const key of ["term", "commit", "applied", "last_index", "value"])
    c[key].textContent = n.has_info ? fmt(n[key]) : "–";
  c.diag.textContent = n.diagnosis;
  c.kill.disabled = !(n.state === "running" || n.state === "paused");
  c.pause.disabled = n.state !== "running";
  c.resume.disabled = n.state !== "paused";
  c.restart.disabled = n.state !== "stopped";
}

function renderTimeline(events) {
  const ul = $("timeline");
  ul.replaceChildren();
  for (const e of events.slice().reverse()) {
    const li = document.createElement("li");
    li.className = e.kind + (e.failover_ms >= 0 ? " failover" : "");
    const t = document.createElement("span");
    t.className = "t";
    t.textContent = "+" + (e.t_ms / 1000).toFixed(1) + " s";
    li.append(t, document.createTextNode(e.text));
    ul.appendChild(li);
  }
}

function drawChart(s) {
  const cv = $("chart"), ratio = window.devicePixelRatio || 1;
  const w = cv.clientWidth, h = cv.clientHeight;
  cv.width = w * ratio;
  cv.height = h * ratio;
  const g = cv.getContext("2d");
  g.scale(ratio, ratio);
  const left = 48, band = 12, bottom = h - band - 18, top = 6, span = 60000;
  const t1 = s.uptime_ms, t0 = t1 - span;
  const x = (t) => left + (w - left - 4) * (t - t0) / span;
  const max = Math.max(10, ...s.chart.map((p) => p[1])) * 1.15;
  const y = (v) => bottom - (bottom - top) * v / max;
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#6b7280";
  g.strokeStyle = "#eceef2";
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4;
    g.beginPath(); g.moveTo(left, y(v)); g.lineTo(w - 4, y(v)); g.stroke();
    g.fillText(fmt(Math.round(v)), 4, y(v) + 4);
  }
  for (let sec = 0; sec <= 60; sec += 10) {
    const label = sec === 60 ? "now" : "-" + (60 - sec) + " s";
    g.fillText(label, Math.min(x(t0 + sec * 1000) - 12, w - 4 - g.measureText(label).width), h - 2);
  }
  s.chart.forEach((p, i) => {
    const next = i + 1 < s.chart.length ? s.chart[i + 1][0] : t1;
    if (p[0] < t0) return;
    g.fillStyle = COLORS[p[2]] || "#d6d9de";
    g.fillRect(x(p[0]), bottom + 4, Math.max(1, x(next) - x(p[0]) + 0.5), band);  // + 0.5: no seams
  });
  g.strokeStyle = "#1d2330";
  g.lineWidth = 1.6;
  g.beginPath();
  s.chart.filter((p) => p[0] >= t0).forEach((p, i) => (i ? g.lineTo : g.moveTo).call(g, x(p[0]), y(p[1])));
  g.stroke();
  g.lineWidth = 1;
  for (const e of s.timeline) {
    if (e.t_ms < t0 || !["kill", "pause", "restart"].includes(e.kind)) continue;
    g.strokeStyle = g.fillStyle = e.kind === "restart" ? "#0891b2" : "#dc2626";
    g.setLineDash([4, 3]);
    g.beginPath(); g.moveTo(x(e.t_ms), top); g.lineTo(x(e.t_ms), bottom + band + 4); g.stroke();
    g.setLineDash([]);
    const label = e.kind + " " + e.node, width = g.measureText(label).width;
    g.fillText(label, x(e.t_ms) + 3 + width > w - 4 ? x(e.t_ms) - 3 - width : x(e.t_ms) + 3, top + 10);
  }
}

function render(s) {
  last = s;
  $("clients").textContent = s.clients;
  $("counter").textContent = fmt(s.counter);
  $("rate").textContent = fmt(Math.round(s.rate));
  $("leader").dataset.id = s.leader;
  $("leader").textContent = s.leader ? "node " + s.leader + " · term " + s.term : "none";
  $("failover").textContent = s.last_failover_ms >= 0 ? fmt(s.last_failover_ms) + " ms" : "–";
  $("resumed").textContent = s.last_writes_resumed_ms >= 0
      ? "from the kill to a new leader seen; writes resumed after " + fmt(s.last_writes_resumed_ms) + " ms"
      : "kill or pause the leader";
  $("outcomes").textContent = fmt(s.acked) + " ok · " + fmt(s.unknown) + " unknown · " + fmt(s.failed) + " failed";
  s.nodes.forEach(renderNode);
  renderTimeline(s.timeline);
  drawChart(s);
}

async function act(id, verb) {
  try {
    const r = await fetch("/api/node/" + id + "/" + verb, { method: "POST", headers: { "X-Raftkit-Token": TOKEN } });
    $("error").textContent = r.ok ? "" : verb + " node " + id + ": " + (await r.text());
  } catch (e) {
    $("error").textContent = "the demo does not answer";
  }
}

async function poll() {
  try {
    const r = await fetch("/api/state", { cache: "no-store" });
    if (!r.ok) throw new Error(await r.text());
    render(await r.json());
    if ($("error").textContent === "the demo does not answer") $("error").textContent = "";
  } catch (e) {
    $("error").textContent = "the demo does not answer";
  }
  setTimeout(poll, 250);
}
window.addEventListener("resize", () => last && drawChart(last));
poll();
</script>
</body>
</html>
)JS";

}  // namespace

std::string web_demo_page(const std::string& token) {
  // The token is hexadecimal: nothing in it needs escaping inside a JS string.
  return std::string(kHead) + "<script>\nconst TOKEN = \"" + token + "\";" + kScript;
}

}  // namespace raftkit::counter
