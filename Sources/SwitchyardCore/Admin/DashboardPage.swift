/// The live operations page served at `GET /admin`: one self-contained HTML document.
///
/// Inline CSS, JS and SVG only (no fonts, no CDN, no request beyond `/admin/events` and the drain
/// endpoints), so it works offline and under `default-src 'self'; script-src 'unsafe-inline';
/// style-src 'unsafe-inline'; img-src data:; connect-src 'self'`. It reads the `snapshot` events of
/// `GET /admin/events` with `fetch()` (EventSource cannot send `Authorization`), keeps the admin
/// token in `sessionStorage` only, and renders per route and model: breaker state with time left,
/// requests/s, error share, p50/p99, the share each model served over 15 minutes, the last 50
/// decisions (downgrades first) and batches. `data-testid` attributes are the browser test's handles
/// (`Tests/dashboard/browser_check.py`); `Tests/dashboard/mock_admin.py` serves this page from this
/// file for developing it without the router.
enum DashboardPage {
    static let html: String = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Switchyard · operations</title>
<style>
:root {
  --bg: #f4f6f8; --panel: #ffffff; --panel-2: #f8f9fb; --border: #dfe3e8; --grid: #e8ebef;
  --text: #1b1f24; --muted: #5b6470; --accent: #0b63c7; --accent-solid: #0b63c7; --open-solid: #c9252f;
  --green: #1a7f37; --amber: #9a6700; --red: #c9252f; --violet: #7145c9; --slate: #57606a;
  --green-bg: #dcf3e2; --amber-bg: #fbefc9; --red-bg: #fde2e1; --violet-bg: #ece4fb; --slate-bg: #e9ecef; --accent-bg: #e0ecfb;
  --c0: #2f7ee6; --c1: #8b5cf6; --c2: #0f9d8a; --c3: #e2721b; --c4: #d6409f;
  --line-rps: #2f7ee6; --line-err: #d9363e; --line-p50: #0f9d8a; --line-p99: #e2721b;
  --shadow: 0 1px 2px rgba(16, 24, 40, .05);
  --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  --mono: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", monospace;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0e1117; --panel: #161b22; --panel-2: #1b212b; --border: #2b3340; --grid: #232a35;
    --text: #e6edf3; --muted: #8e98a6; --accent: #58a6ff; --accent-solid: #1f6feb; --open-solid: #d1242f;
    --green: #3fb950; --amber: #d8a526; --red: #ff6b63; --violet: #b392f0; --slate: #9aa4b2;
    --green-bg: #12301b; --amber-bg: #35290a; --red-bg: #3d1614; --violet-bg: #2a2045; --slate-bg: #262d38; --accent-bg: #102a4a;
    --c0: #58a6ff; --c1: #a982f7; --c2: #2fc4ae; --c3: #f0883e; --c4: #e572b8;
    --line-rps: #58a6ff; --line-err: #ff6b63; --line-p50: #2fc4ae; --line-p99: #f0883e;
    --shadow: none;
  }
}
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.45 var(--sans); }
button { font: inherit; }
[hidden] { display: none !important; }
.mono { font-family: var(--mono); font-size: 12.5px; }
.muted { color: var(--muted); }
.num { font-variant-numeric: tabular-nums; }

.top { position: sticky; top: 0; z-index: 10; display: flex; flex-wrap: wrap; align-items: center; gap: 8px 16px;
  padding: 10px 24px; background: var(--panel); border-bottom: 1px solid var(--border); }
.brand { display: flex; align-items: center; gap: 10px; margin-right: auto; font-weight: 650; font-size: 15px; }
.brand svg { color: var(--accent); flex: none; }
.brand .sub { font-weight: 400; color: var(--muted); }
.top-right { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 14px; font-size: 13px; }
.conn { display: inline-flex; align-items: center; gap: 7px; padding: 2px 10px 2px 8px; border-radius: 999px;
  border: 1px solid var(--border); background: var(--panel-2); font-weight: 600; font-size: 12.5px; }
.conn .dot { width: 8px; height: 8px; border-radius: 50%; background: var(--slate); }
.conn[data-state="live"] .dot { background: var(--green); box-shadow: 0 0 0 3px var(--green-bg); }
.conn[data-state="reconnecting"] .dot, .conn[data-state="connecting"] .dot { background: var(--amber); box-shadow: 0 0 0 3px var(--amber-bg); }
.conn[data-state="signed_out"] .dot { background: var(--slate); }
.updated.stale { color: var(--amber); font-weight: 600; }
.linkbtn { background: none; border: 0; padding: 0; color: var(--accent); cursor: pointer; font-size: 13px; }
.linkbtn:hover { text-decoration: underline; }

.banner { margin: 0 0 16px; padding: 9px 14px; border-radius: 8px; border: 1px solid var(--amber); background: var(--amber-bg);
  color: var(--text); font-size: 13px; }
main { max-width: 1640px; margin: 0 auto; padding: 18px 24px 56px; }
main.dim .routes, main.dim .tiles { opacity: .65; }
h2 { font-size: 15px; margin: 0; font-weight: 650; }
.section-head { display: flex; align-items: baseline; flex-wrap: wrap; gap: 4px 12px; margin: 28px 0 10px; }
.section-head .muted { font-size: 13px; }
.empty { padding: 18px; color: var(--muted); text-align: center; }

.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; margin-bottom: 18px; }
.tile { background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: 10px 14px; box-shadow: var(--shadow); min-width: 0; }
.tile .label { font-size: 12px; color: var(--muted); }
.tile .value { font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; line-height: 1.3; }
.tile .note { font-size: 12px; color: var(--muted); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.tile.alert { border-color: var(--red); }
.tile.alert .value { color: var(--red); }
.tile.warn .value { color: var(--amber); }

.routes { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 500px), 1fr)); gap: 16px; align-items: start; }
.card { background: var(--panel); border: 1px solid var(--border); border-radius: 10px; box-shadow: var(--shadow); min-width: 0; }
.route-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 12px; padding: 14px 16px 0; }
.route-head .chain { font-size: 12.5px; color: var(--muted); overflow-wrap: anywhere; }
.stats { display: flex; flex-wrap: wrap; gap: 6px 22px; }
.stat { display: flex; flex-direction: column; min-width: 0; }
.stat .k { font-size: 11.5px; color: var(--muted); }
.stat .v { font-weight: 650; font-variant-numeric: tabular-nums; white-space: nowrap; }
.route-stats { padding: 10px 16px 4px; }
.route-stats .v { font-size: 17px; }
.charts { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 12px 18px; padding: 8px 16px 14px; }
.chart { min-width: 0; display: flex; flex-direction: column; justify-content: flex-end; }
.chart-head { display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between; gap: 0 8px;
  font-size: 12px; color: var(--muted); margin-bottom: 3px; }
.chart-head .v { color: var(--text); font-weight: 600; font-variant-numeric: tabular-nums; }
.legend { display: inline-flex; flex-wrap: wrap; gap: 0 10px; }
.sw { display: inline-block; width: 8px; height: 8px; border-radius: 2px; margin-right: 4px; vertical-align: 0; }
.plot { position: relative; height: 58px; cursor: crosshair; touch-action: pan-y; }
/* The svg's box is the plot's: an auto-height wrapper would let the viewBox's 5:1 ratio set its height,
   and a wide chart would spill below its plot. */
.plot .svg { position: absolute; inset: 0; }
.plot svg { display: block; width: 100%; height: 100%; overflow: visible; }
.plot .ymax { position: absolute; top: -2px; right: 0; padding-left: 3px; font-size: 10px; line-height: 1; color: var(--muted);
  background: var(--panel); }
.plot .cursor { position: absolute; top: 0; bottom: 0; width: 1px; background: var(--muted); opacity: .6; pointer-events: none; }
.axis { display: flex; justify-content: space-between; font-size: 10.5px; color: var(--muted); margin-top: 2px; }
.models-title { margin: 0; padding: 10px 16px 6px; border-top: 1px solid var(--border); font-size: 12px; font-weight: 600; color: var(--muted); }

.model { padding: 12px 16px 14px; border-top: 1px solid var(--border); min-width: 0; }
.models-title + .models .model:first-child { border-top: 0; padding-top: 4px; }
.model.is-open { background: linear-gradient(90deg, var(--red-bg), transparent 55%); }
.model.is-drained { background: linear-gradient(90deg, var(--slate-bg), transparent 55%); }
.model-head { display: grid; grid-template-columns: auto minmax(0, 1fr) auto auto; grid-template-areas: "rank id badges button";
  align-items: center; gap: 6px 10px; }
.model-head .rank { grid-area: rank; }
.model-head .model-id { grid-area: id; }
.model-head .badges { grid-area: badges; }
.model-head .btn { grid-area: button; }
.rank { display: inline-grid; place-items: center; width: 20px; height: 20px; border-radius: 50%; background: var(--slate-bg); color: var(--muted);
  font-size: 11px; font-weight: 700; flex: none; }
.model-id { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0 8px; min-width: 0; }
.model-name { font-weight: 650; font-size: 14.5px; overflow-wrap: anywhere; }
.model-sub { font-size: 12px; color: var(--muted); overflow-wrap: anywhere; }
.badges { display: flex; flex-wrap: wrap; align-items: center; justify-content: flex-end; gap: 6px; }
.badge { display: inline-flex; align-items: center; gap: 5px; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600;
  line-height: 18px; white-space: nowrap; background: var(--slate-bg); color: var(--slate); }
.badge::before { content: ""; width: 6px; height: 6px; border-radius: 50%; background: currentColor; }
.badge.closed { background: var(--green-bg); color: var(--green); }
.badge.half_open { background: var(--amber-bg); color: var(--amber); }
.badge.open { background: var(--open-solid); color: #fff; }
.badge.drained { background: var(--violet-bg); color: var(--violet); }
.badge.limited { background: var(--amber-bg); color: var(--amber); }
.badge.active { background: var(--accent-bg); color: var(--accent); }
.badge.plain::before { display: none; }
.left { font-size: 12px; font-weight: 600; color: var(--red); font-variant-numeric: tabular-nums; white-space: nowrap; }
.btn { border: 1px solid var(--border); background: var(--panel-2); color: var(--text); border-radius: 6px; padding: 3px 12px;
  font-size: 12.5px; font-weight: 600; cursor: pointer; min-width: 76px; }
.btn:hover:not(:disabled) { border-color: var(--muted); }
.btn:focus-visible, .linkbtn:focus-visible, input:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
.btn:disabled { opacity: .55; cursor: progress; }
.btn.primary { background: var(--accent-solid); border-color: var(--accent-solid); color: #fff; }
.model .stats { margin: 8px 0 0 30px; }
.sparks { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 14px; margin: 8px 0 0 30px; }
.sparks .plot { height: 30px; }
.last-error { margin: 8px 0 0 30px; font-size: 12px; color: var(--red); overflow-wrap: anywhere; }
.last-error b { font-weight: 600; color: var(--muted); }

.table-card { overflow: hidden; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th { text-align: left; font-size: 11.5px; font-weight: 600; color: var(--muted); padding: 8px 12px; background: var(--panel-2);
  border-bottom: 1px solid var(--border); white-space: nowrap; }
td { padding: 7px 12px; border-bottom: 1px solid var(--grid); vertical-align: top; }
tbody tr:last-child td { border-bottom: 0; }
td.r, th.r { text-align: right; }
td.d-time, td.d-model, td.d-out, td.d-dur { white-space: nowrap; }
td.d-req { overflow-wrap: anywhere; }
tr.downgraded td { background: var(--amber-bg); }
tr.downgraded td:first-child { box-shadow: inset 3px 0 0 var(--amber); }
.status { font-weight: 650; font-variant-numeric: tabular-nums; }
.status.s2 { color: var(--green); } .status.s4 { color: var(--amber); } .status.s5 { color: var(--red); }
.chips { display: flex; flex-wrap: wrap; gap: 4px; }
.chip { font-family: var(--mono); font-size: 11.5px; padding: 0 6px; border-radius: 4px; background: var(--slate-bg); overflow-wrap: anywhere; }
.chip.ok { background: var(--green-bg); color: var(--green); }
.chip.fail { background: var(--red-bg); color: var(--red); }
.tag { font-size: 11px; font-weight: 700; color: var(--amber); margin-left: 6px; white-space: nowrap; }

.batch { display: grid; grid-template-columns: minmax(0, 1.3fr) 104px minmax(0, 2fr) minmax(0, 1.5fr); gap: 6px 16px; align-items: center;
  padding: 10px 14px; border-top: 1px solid var(--grid); }
.batch:first-child { border-top: 0; }
.batch .id { overflow-wrap: anywhere; }
.bar { display: flex; height: 10px; border-radius: 5px; background: var(--grid); overflow: hidden; }
.bar span { display: block; height: 100%; }
.counts { font-size: 12px; color: var(--muted); }
.counts b { color: var(--text); font-weight: 600; }
.counts i { font-style: normal; white-space: nowrap; }
.counts i::before { content: ""; display: inline-block; width: 7px; height: 7px; border-radius: 2px; margin: 0 4px 0 2px; background: var(--k); }

.login { max-width: 380px; margin: 12vh auto 0; padding: 26px 26px 22px; }
.login h1 { font-size: 18px; margin: 0 0 4px; }
.login p { margin: 0 0 16px; color: var(--muted); font-size: 13px; }
.login label { display: block; font-size: 12.5px; font-weight: 600; margin-bottom: 6px; }
.login input { width: 100%; padding: 8px 10px; border: 1px solid var(--border); border-radius: 6px; background: var(--panel-2);
  color: var(--text); font: 14px var(--mono); }
.login .btn { width: 100%; margin-top: 14px; padding: 8px; font-size: 14px; }
.login .error { margin: 12px 0 0; color: var(--red); font-size: 13px; }

.tip { position: fixed; z-index: 20; pointer-events: none; background: var(--panel); border: 1px solid var(--border); border-radius: 6px;
  padding: 6px 9px; font-size: 12px; box-shadow: 0 4px 14px rgba(0, 0, 0, .18); min-width: 120px; }
.tip .t { color: var(--muted); margin-bottom: 2px; }
.tip .row { display: flex; justify-content: space-between; gap: 14px; font-variant-numeric: tabular-nums; }
.toasts { position: fixed; right: 16px; bottom: 16px; z-index: 30; display: flex; flex-direction: column; gap: 8px;
  max-width: min(420px, calc(100vw - 32px)); }
.toast { background: var(--panel); border: 1px solid var(--border); border-left: 4px solid var(--green); border-radius: 6px; padding: 9px 12px;
  font-size: 13px; box-shadow: 0 4px 14px rgba(0, 0, 0, .15); overflow-wrap: anywhere; }
.toast.bad { border-left-color: var(--red); }

@media (max-width: 720px) {
  .top { padding: 8px 12px; gap: 8px; }
  .brand { gap: 8px; }
  .brand .sub, .updated .word { display: none; }
  .top-right { gap: 10px; }
  main { padding: 14px 12px 48px; }
  .tiles { grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 8px; margin-bottom: 12px; }
  .tile { padding: 7px 10px; }
  .tile .label { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  .tile .value { font-size: 18px; }
  .charts { gap: 10px 12px; padding: 8px 12px 12px; }
  .route-head, .route-stats { padding-left: 12px; padding-right: 12px; }
  .model { padding: 10px 12px 12px; }
  .model .stats, .sparks, .last-error { margin-left: 0; }
  .model .stats { gap: 4px 16px; }
  .sparks { gap: 10px; }
  .model-head { grid-template-columns: auto minmax(0, 1fr) auto; grid-template-areas: "rank id button" ". badges badges"; }
  .badges { justify-content: flex-start; }
  /* A decision becomes three lines: time route → model status / request id duration / outcome attempts.
     The request id's basis leaves no room for it on the first line nor for the outcome on the second. */
  thead { display: none; }
  table, tbody { display: block; }
  tr { display: flex; flex-wrap: wrap; align-items: baseline; gap: 3px 8px; padding: 8px 12px; border-bottom: 1px solid var(--grid); }
  tbody tr:last-child { border-bottom: 0; }
  td { display: block; padding: 0; border: 0; min-width: 0; }
  .d-time { order: 1; color: var(--muted); } .d-route { order: 2; } .d-status { order: 4; }
  .d-model { order: 3; flex: 1 1 0; font-weight: 600; overflow: hidden; text-overflow: ellipsis; }
  .d-model::before { content: "→ "; font-weight: 400; color: var(--muted); }
  .d-req { order: 5; flex: 0 0 calc(100% - 96px); color: var(--muted); font-size: 11.5px; }
  .d-dur { order: 6; flex: 1 0 80px; }
  .d-out { order: 7; } .d-att { order: 8; flex: 1 1 0; }
  td.empty { flex: 1 1 100%; }
  tr.downgraded { background: var(--amber-bg); box-shadow: inset 3px 0 0 var(--amber); }
  tr.downgraded td { background: none; }
  tr.downgraded td:first-child { box-shadow: none; }
  .batch { grid-template-columns: minmax(0, 1fr) auto; }
  .batch .bar-wrap, .batch .counts { grid-column: 1 / -1; }
}
</style>
</head>
<body>
<header class="top">
  <div class="brand">
    <svg width="22" height="22" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" aria-hidden="true">
      <path d="M3 6h5c3 0 4 3 6.5 6S18 18 21 18"/><path d="M3 18h5c3 0 4-3 6.5-6S18 6 21 6"/>
      <circle cx="3" cy="6" r="1"/><circle cx="3" cy="18" r="1"/>
    </svg>
    <span>Switchyard</span><span class="sub">operations</span>
  </div>
  <div class="top-right">
    <span class="conn" id="conn" data-state="connecting" aria-live="polite">
      <span class="dot" aria-hidden="true"></span><span data-testid="conn-state" id="conn-text">connecting</span>
    </span>
    <span class="updated muted" id="updated">no data yet</span>
    <button type="button" class="linkbtn" id="signout" hidden>Sign out</button>
  </div>
</header>

<section class="card login" id="login" hidden aria-labelledby="login-title">
  <h1 id="login-title">Sign in</h1>
  <p>This router needs its admin token. It is kept in this tab's session storage only.</p>
  <form id="login-form" autocomplete="off">
    <label for="login-token">Admin token</label>
    <input type="password" id="login-token" data-testid="login-token" required spellcheck="false" autocomplete="off">
    <button type="submit" class="btn primary" data-testid="login-submit">Sign in</button>
    <p class="error" id="login-error" role="alert" hidden></p>
  </form>
</section>

<main id="app" hidden>
  <div class="banner" id="banner" role="status" hidden></div>
  <div class="tiles" id="tiles"></div>
  <div class="routes" id="routes"><div class="card empty">Waiting for the first snapshot…</div></div>
  <section data-testid="batches" aria-labelledby="batches-title">
    <div class="section-head"><h2 id="batches-title">Batches</h2><span class="muted" id="batches-note"></span></div>
    <div class="card" id="batches"></div>
  </section>
  <section data-testid="decisions" aria-labelledby="decisions-title">
    <div class="section-head"><h2 id="decisions-title">Decisions</h2><span class="muted" id="decisions-note"></span></div>
    <div class="card table-card">
      <table>
        <thead>
          <tr><th>Time</th><th>Request</th><th>Route</th><th>Served by</th><th>Status</th><th>Outcome</th><th>Attempts</th>
            <th class="r">Duration</th></tr>
        </thead>
        <tbody id="decisions"></tbody>
      </table>
    </div>
  </section>
</main>
<div class="tip" id="tip" hidden></div>
<div class="toasts" id="toasts" aria-live="polite"></div>
<noscript><p style="padding:24px">This dashboard needs JavaScript.</p></noscript>

<script>
"use strict";
(() => {
  const TOKEN_KEY = "switchyard.adminToken";
  const STALL_MS = 5000;                           // snapshots come every second: this long without a byte, the stream is dead
  const BACKOFF_MIN = 1000, BACKOFF_MAX = 10000;   // reconnect delays double from 1 s up to 10 s
  const STALE_MS = 3000;                           // data older than this is flagged in the header

  const $ = (id) => document.getElementById(id);
  const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]);
  const el = (tag, cls, text) => {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text != null) n.textContent = text;
    return n;
  };
  // A start tag from an attribute object, every value escaped; markup strings are built only through esc() and this.
  const tag = (name, attrs, selfClosing) =>
    "<" + name + Object.entries(attrs || {}).map(([k, v]) => " " + k + '="' + esc(v) + '"').join("") + (selfClosing ? "/>" : ">");
  const swatch = (color) => tag("i", { class: "sw", style: "background:" + color }) + "</i>";

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    snap: null,
    receivedAt: 0,             // performance.now() at the last snapshot: countdowns run on the local clock from there
    gen: 0,                    // bumped by every (re)connect and stop; a reader of an older generation gives up
    abort: null,
    backoff: BACKOFF_MIN,
    retryAt: 0,
    retryTimer: 0,
    retryReason: "",
    lastByteAt: 0,
    live: false,
    pendingDrain: new Map(),   // model -> {want, until}: its buttons stay disabled until a snapshot agrees or time runs out
    routeViews: new Map(),
    keys: { decisions: "", batches: "" },
  };

  const fmtRate = (v) => v == null ? "—" : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  const fmtPct = (v) => v == null ? "—" : v === 0 ? "0%" : (v * 100).toFixed(v < 0.1 ? 1 : 0) + "%";
  const fmtMs = (v) => v == null ? "—" : v >= 1000 ? (v / 1000).toFixed(v >= 10000 ? 1 : 2) + " s" : Math.round(v) + " ms";
  const pad = (n) => String(n).padStart(2, "0");
  const fmtLeft = (ms) => {
    const s = Math.max(0, ms) / 1000;
    if (s < 10) return s.toFixed(1) + " s";
    if (s < 60) return Math.ceil(s) + " s";
    return Math.floor(s / 60) + " m " + pad(Math.floor(s % 60)) + " s";
  };
  const fmtTime = (ms) => {
    const d = new Date(ms);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  };
  const fmtAgo = (ms) =>
    ms < 60000 ? Math.round(ms / 1000) + " s ago" : ms < 3600000 ? Math.round(ms / 60000) + " min ago" : (ms / 3600000).toFixed(1) + " h ago";

  // Connection: one fetch() of /admin/events at a time, read as a stream, reopened with backoff.

  function authHeaders(extra) {
    const h = Object.assign({}, extra);
    if (state.token) h.Authorization = "Bearer " + state.token;
    return h;
  }

  async function errorMessage(res) {
    try {
      const body = await res.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (_) { /* not the JSON error envelope */ }
    return "HTTP " + res.status;
  }

  function stop() {
    state.gen++;
    if (state.abort) state.abort.abort();
    state.abort = null;
    clearTimeout(state.retryTimer);
    state.live = false;
  }

  async function connect() {
    stop();
    const gen = state.gen;
    const ctl = new AbortController();
    state.abort = ctl;
    setConn(state.snap ? "reconnecting" : "connecting");
    let res;
    try {
      res = await fetch("/admin/events", { headers: authHeaders({ Accept: "text/event-stream" }), cache: "no-store", signal: ctl.signal });
    } catch (e) {
      if (gen === state.gen) scheduleRetry("cannot reach the router");
      return;
    }
    if (gen !== state.gen) return;
    if (res.status === 401 || res.status === 403) {
      const message = await errorMessage(res);
      // 401: no token or a wrong one. 403: the server refuses this caller whatever it sends; say why.
      if (gen === state.gen) showLogin(state.token ? "The token was refused: " + message : res.status === 403 ? message : null);
      return;
    }
    if (!res.ok) {
      const message = await errorMessage(res);
      if (gen === state.gen) scheduleRetry(message);
      return;
    }
    if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
    showApp();
    state.live = true;
    state.lastByteAt = performance.now();
    setConn("live");
    try {
      await readEvents(res.body, gen, onEvent);
    } catch (_) { /* aborted or dropped: reconnect below */ }
    if (gen === state.gen) scheduleRetry("the stream ended");
  }

  function scheduleRetry(reason) {
    stop();
    const delay = state.backoff;
    state.backoff = Math.min(state.backoff * 2, BACKOFF_MAX);
    state.retryAt = performance.now() + delay;
    state.retryReason = reason;
    state.retryTimer = setTimeout(connect, delay);
    setConn("reconnecting");
  }

  // A minimal text/event-stream reader: lines end in \n, \r\n or \r; a blank line dispatches the event.
  async function readEvents(body, gen, dispatch) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buf = "", type = "", data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done || gen !== state.gen) {
        reader.cancel().catch(() => {});
        return;
      }
      state.lastByteAt = performance.now();
      buf += decoder.decode(value, { stream: true });
      let start = 0;
      for (;;) {
        const i = buf.slice(start).search(/[\r\n]/);
        if (i < 0) break;
        const at = start + i;
        if (buf[at] === "\r" && at === buf.length - 1) break;   // maybe half of a \r\n: wait for the next chunk
        const line = buf.slice(start, at);
        start = at + (buf[at] === "\r" && buf[at + 1] === "\n" ? 2 : 1);
        if (line === "") {
          if (data.length) dispatch(type || "message", data.join("\n"));
          type = "";
          data = [];
        } else if (line[0] !== ":") {
          const c = line.indexOf(":");
          const field = c < 0 ? line : line.slice(0, c);
          let v = c < 0 ? "" : line.slice(c + 1);
          if (v[0] === " ") v = v.slice(1);
          if (field === "event") type = v;
          else if (field === "data") data.push(v);
        }
      }
      buf = buf.slice(start);
    }
  }

  function onEvent(type, data) {
    if (type !== "snapshot") return;
    let snap;
    try {
      snap = JSON.parse(data);
    } catch (_) {
      return;
    }
    state.snap = snap;
    state.receivedAt = performance.now();
    state.backoff = BACKOFF_MIN;
    render();
  }

  function setConn(s) {
    $("conn").dataset.state = s;
    $("conn-text").textContent = s.replace("_", " ");
    $("app").classList.toggle("dim", s !== "live");
    tick();
  }

  // Signing in and out. The token lives in this tab's sessionStorage and nowhere else.

  function showLogin(error) {
    stop();
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $("app").hidden = true;
    $("login").hidden = false;
    $("signout").hidden = true;
    const err = $("login-error");
    err.hidden = !error;
    err.textContent = error || "";
    setConn("signed_out");
    $("login-token").focus();
  }

  function showApp() {
    $("login").hidden = true;
    $("app").hidden = false;
    $("signout").hidden = !state.token;
  }

  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("login-token").value.trim();
    if (!token) return;
    state.token = token;   // stored once the stream accepts it (connect())
    $("login-token").value = "";
    $("login-error").hidden = true;
    state.backoff = BACKOFF_MIN;
    connect();
  });

  $("signout").addEventListener("click", () => {
    state.snap = null;
    showLogin(null);
  });

  // Drain and undrain: the same POSTs as the admin API, so the router audits them the same way.

  async function setDrained(name, drain) {
    state.pendingDrain.set(name, { want: drain, until: performance.now() + 5000 });
    render();
    const url = "/admin/models/" + encodeURIComponent(name) + "/" + (drain ? "disable" : "enable");
    try {
      const res = await fetch(url, { method: "POST", headers: authHeaders({}), cache: "no-store" });
      if (res.status === 401) {
        showLogin("The token was refused: " + await errorMessage(res));
        return;
      }
      if (!res.ok) throw new Error(await errorMessage(res));
      const body = await res.json().catch(() => ({}));
      const drained = body.drained != null ? body.drained : body.disabled != null ? body.disabled : drain;
      toast(drained ? name + " drained: no new requests go to it" : name + " undrained: back in rotation", false);
    } catch (e) {
      state.pendingDrain.delete(name);
      toast("Could not " + (drain ? "drain " : "undrain ") + name + ": " + e.message, true);
      render();
    }
  }

  function toast(text, bad) {
    const t = el("div", "toast" + (bad ? " bad" : ""), text);
    $("toasts").appendChild(t);
    setTimeout(() => t.remove(), bad ? 8000 : 4000);
  }

  // Charts: inline SVG in a 300x60 viewBox stretched to the box (preserveAspectRatio none; strokes keep their width).

  const W = 300, H = 60;

  // How each kind of figure is written: fmt for values, scale for the top of the y axis, floor for the smallest scale.
  const KIND = {
    rate: { fmt: fmtRate, scale: (v) => String(+v.toPrecision(3)), floor: 1 },
    share: { fmt: fmtPct, scale: (v) => +(v * 100).toPrecision(3) + "%", floor: 0.05 },
    ms: { fmt: fmtMs, scale: (v) => v >= 1000 ? +(v / 1000).toPrecision(3) + " s" : v + " ms", floor: 100 },
  };

  function niceMax(v, floor) {
    if (!(v > floor)) return floor;
    const e = Math.pow(10, Math.floor(Math.log10(v)));
    const f = v / e;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * e;
  }

  const xAt = (i, n) => n > 1 ? i * W / (n - 1) : W / 2;
  const yAt = (v, max) => H - Math.min(v / max, 1) * (H - 2);
  const pt = (p) => p[0].toFixed(1) + " " + p[1].toFixed(1);

  // Line and area paths of one series; a null (no data in that bucket) breaks the line.
  function paths(values, max) {
    let line = "", area = "", seg = [];
    const flush = () => {
      if (!seg.length) return;
      const run = seg.map(pt).join("L");
      line += "M" + run + (seg.length === 1 ? "h0.5" : "");
      area += "M" + seg[0][0].toFixed(1) + " " + H + "L" + run + "L" + seg[seg.length - 1][0].toFixed(1) + " " + H + "Z";
      seg = [];
    };
    values.forEach((v, i) => {
      if (v == null || !isFinite(v)) flush();
      else seg.push([xAt(i, values.length), yAt(v, max)]);
    });
    flush();
    return { line, area };
  }

  function gridLines() {
    const line = (y, color, dashed) => tag("line", {
      x1: 0, x2: W, y1: y, y2: y, stroke: color, "stroke-dasharray": dashed ? "3 3" : "none", "vector-effect": "non-scaling-stroke",
    }, true);
    return line(H, "var(--border)", false) + line(H / 2, "var(--grid)", true) + line(2, "var(--grid)", true);
  }

  function svg(body, title, crisp) {
    const attrs = { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img", "aria-label": title };
    if (crisp) attrs["shape-rendering"] = "crispEdges";
    return tag("svg", attrs) + gridLines() + body + "</svg>";
  }

  function makeChart(parent, title, withAxis) {
    const c = el("div", "chart");
    c.innerHTML = '<div class="chart-head"><span class="t"></span><span class="v"></span></div>' +
      '<div class="plot"><div class="svg"></div><span class="ymax"></span></div>' +
      (withAxis ? '<div class="axis"><span>15 min ago</span><span>now</span></div>' : "");
    c.querySelector(".t").textContent = title;
    parent.appendChild(c);
    const chart = { head: c.querySelector(".v"), plot: c.querySelector(".plot"), svg: c.querySelector(".svg"), ymax: c.querySelector(".ymax") };
    chart.plot.addEventListener("pointermove", (e) => showTip(chart, e));
    chart.plot.addEventListener("pointerleave", hideTip);
    return chart;
  }

  // series: [{name, color, values}]; kind: a key of KIND.
  function drawLines(chart, series, kind, title) {
    const k = KIND[kind];
    const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v != null && isFinite(v)))), k.floor);
    let body = "";
    for (const s of series) {
      const p = paths(s.values, max);
      body += tag("path", { d: p.area, fill: s.color, "fill-opacity": series.length > 1 ? 0.07 : 0.13 }, true) +
        tag("path", { d: p.line, fill: "none", stroke: s.color, "stroke-width": 1.6, "stroke-linejoin": "round",
          "stroke-linecap": "round", "vector-effect": "non-scaling-stroke" }, true);
    }
    chart.svg.innerHTML = svg(body, title, false);
    chart.ymax.textContent = k.scale(max);
    chart.tip = { n: series[0].values.length, bars: false, rows: (i) => series.map((s) => [s.name, s.color, k.fmt(s.values[i])]) };
  }

  // Stacked bars, one per bucket: the share of that bucket's requests each model served, in preference order from the bottom.
  function drawShare(chart, served, names, colors, title) {
    const counts = names.map((m) => served[m] || []);
    const n = Math.max(0, ...counts.map((c) => c.length));
    const bw = W / Math.max(n, 1);
    const totals = [];
    let body = "";
    for (let i = 0; i < n; i++) {
      const total = counts.reduce((a, c) => a + (c[i] || 0), 0);
      totals.push(total);
      let y = H;
      counts.forEach((c, k) => {
        if (!total || !c[i]) return;
        const h = c[i] / total * (H - 2);
        y -= h;
        body += tag("rect", { x: (i * bw).toFixed(2), y: y.toFixed(2), width: (bw + 0.05).toFixed(2), height: h.toFixed(2), fill: colors[k] }, true);
      });
    }
    chart.svg.innerHTML = svg(body, title, true);
    chart.ymax.textContent = "100%";
    chart.tip = {
      n, bars: true,
      rows: (i) => totals[i]
        ? names.map((m, k) => [m, colors[k], fmtPct((counts[k][i] || 0) / totals[i]) + " (" + (counts[k][i] || 0) + ")"])
        : [["no requests", "transparent", ""]],
    };
  }

  function showTip(chart, e) {
    const s = state.snap;
    if (!chart.tip || !chart.tip.n || !s) return;
    const n = chart.tip.n;
    const r = chart.plot.getBoundingClientRect();
    const frac = Math.min(Math.max((e.clientX - r.left) / r.width, 0), 1);
    const i = chart.tip.bars ? Math.min(n - 1, Math.floor(frac * n)) : Math.round(frac * (n - 1));
    const x = chart.tip.bars ? (i + 0.5) / n : n > 1 ? i / (n - 1) : 0.5;
    let cursor = chart.plot.querySelector(".cursor");
    if (!cursor) cursor = chart.plot.appendChild(el("div", "cursor"));
    cursor.style.left = (x * 100).toFixed(2) + "%";
    // Bucket i of n ends with the current, partial one, which started at now - now % bucket.
    const bucket = s.bucket_ms || 10000;
    const from = s.now_ms - (s.now_ms % bucket) - (n - 1 - i) * bucket;
    const tip = $("tip");
    tip.innerHTML = '<div class="t">' + esc(fmtTime(from) + "–" + fmtTime(Math.min(from + bucket, s.now_ms))) + "</div>" +
      chart.tip.rows(i).map((row) => '<div class="row"><span>' + swatch(row[1]) + esc(row[0]) + "</span><b>" + esc(row[2]) + "</b></div>").join("");
    tip.hidden = false;
    tip.style.left = Math.max(4, Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 4)) + "px";
    tip.style.top = Math.max(4, e.clientY - tip.offsetHeight - 12) + "px";
  }

  function hideTip(e) {
    $("tip").hidden = true;
    const cursor = e.currentTarget.querySelector(".cursor");
    if (cursor) cursor.remove();
  }

  // The three line charts that a route and a model both have.
  function drawHistory(v, h, label) {
    const when = ", last 15 minutes";
    drawLines(v.rps, [{ name: "requests/s", color: "var(--line-rps)", values: h.rps || [] }], "rate", label + " requests per second" + when);
    drawLines(v.err, [{ name: "errors", color: "var(--line-err)", values: h.error_share || [] }], "share", label + " error share" + when);
    drawLines(v.lat, [
      { name: "p50", color: "var(--line-p50)", values: h.p50_ms || [] },
      { name: "p99", color: "var(--line-p99)", values: h.p99_ms || [] },
    ], "ms", label + " latency p50 and p99" + when);
  }

  // Views: each route card and model row is built once and updated in place, so a button survives snapshots.

  function statRow(parent, labels) {
    const out = {};
    for (const [key, label] of labels) {
      const s = parent.appendChild(el("div", "stat"));
      s.append(el("span", "k", label));
      out[key] = s.appendChild(el("span", "v", "—"));
    }
    return out;
  }

  function routeView(name) {
    const root = el("article", "card route");
    root.innerHTML = '<div class="route-head"><h2></h2><span class="chain"></span></div>' +
      '<div class="stats route-stats"></div><div class="charts"></div>' +
      '<h3 class="models-title">Models in preference order</h3><div class="models"></div>';
    root.querySelector("h2").textContent = name;
    const charts = root.querySelector(".charts");
    return {
      root,
      chain: root.querySelector(".chain"),
      stats: statRow(root.querySelector(".route-stats"), [["rps", "requests/s"], ["err", "errors"], ["p50", "p50"], ["p99", "p99"]]),
      rps: makeChart(charts, "Requests/s", true),
      err: makeChart(charts, "Error share", true),
      lat: makeChart(charts, "Latency", true),
      share: makeChart(charts, "Served by model", true),
      models: root.querySelector(".models"),
      modelViews: new Map(),
    };
  }

  function modelView(name) {
    const root = el("div", "model");
    root.dataset.testid = "model-card-" + name;
    root.innerHTML = '<div class="model-head"><span class="rank"></span>' +
      '<div class="model-id"><span class="model-name"></span><span class="model-sub"></span></div>' +
      '<div class="badges"><span class="badge breaker"></span><span class="left"></span></div>' +
      '<button type="button" class="btn drain"></button></div>' +
      '<div class="stats"></div><div class="sparks"></div>' +
      '<div class="last-error" hidden><b>last error</b> <span class="mono"></span></div>';
    root.querySelector(".model-name").textContent = name;
    const breaker = root.querySelector(".breaker");
    breaker.dataset.testid = "breaker-" + name;
    const button = root.querySelector(".drain");
    button.dataset.testid = "drain-" + name;
    button.addEventListener("click", () => setDrained(name, button.textContent === "Drain"));
    const sparks = root.querySelector(".sparks");
    const stats = [["inflight", "in flight"], ["rps", "requests/s"], ["err", "errors"], ["p50", "p50"], ["p99", "p99"]];
    return {
      root, breaker, button,
      rank: root.querySelector(".rank"),
      sub: root.querySelector(".model-sub"),
      badges: root.querySelector(".badges"),
      left: root.querySelector(".left"),
      drained: null,
      limited: null,
      stats: statRow(root.querySelector(".stats"), stats),
      rps: makeChart(sparks, "req/s", false),
      err: makeChart(sparks, "errors", false),
      lat: makeChart(sparks, "p50 / p99", false),
      lastError: root.querySelector(".last-error"),
    };
  }

  // Puts nodes into parent in this order, moving only what is out of place, and drops what is left over.
  function placeInOrder(parent, nodes) {
    nodes.forEach((node, i) => {
      if (parent.children[i] !== node) parent.insertBefore(node, parent.children[i] || null);
    });
    while (parent.children.length > nodes.length) parent.lastChild.remove();
  }

  // A badge that exists only while show is true; returns the badge or null.
  function optionalBadge(parent, badge, show, make) {
    if (show && !badge) return parent.appendChild(make());
    if (!show && badge) badge.remove();
    return show ? badge : null;
  }

  function render() {
    const s = state.snap;
    if (!s) return;
    const models = new Map((s.models || []).map((m) => [m.name, m]));
    // A model keeps its colour in every route's share chart.
    const colorOf = new Map((s.models || []).map((m, i) => [m.name, "var(--c" + (i % 5) + ")"]));
    const now = performance.now();
    for (const [name, p] of state.pendingDrain) {
      const m = models.get(name);
      if (!m || m.drained === p.want || now > p.until) state.pendingDrain.delete(name);
    }
    renderTiles(s);
    renderRoutes(s, models, colorOf);
    renderBatches(s);
    renderDecisions(s);
    tick();
  }

  function renderTiles(s) {
    const routes = s.routes || [], models = s.models || [], batches = s.batches || [];
    const rps = routes.reduce((a, r) => a + (r.rps || 0), 0);
    const err = rps ? routes.reduce((a, r) => a + (r.rps || 0) * (r.error_share || 0), 0) / rps : 0;
    const open = models.filter((m) => m.breaker === "open");
    const half = models.filter((m) => m.breaker === "half_open");
    const drained = models.filter((m) => m.drained);
    const inflight = models.reduce((a, m) => a + (m.in_flight || 0), 0);
    const active = batches.filter((b) => b.processing_status !== "ended");
    const names = (list) => list.map((m) => m.name).join(", ");
    const tiles = [
      ["Requests/s", fmtRate(rps), routes.length + (routes.length === 1 ? " route" : " routes"), ""],
      ["Error share", fmtPct(err), "weighted by requests/s", err >= 0.05 ? "alert" : ""],
      ["Open breakers", open.length, open.length ? names(open) : half.length ? half.length + " half open" : "all closed",
        open.length ? "alert" : half.length ? "warn" : ""],
      ["Drained", drained.length, drained.length ? names(drained) : "none", drained.length ? "warn" : ""],
      ["In flight", inflight, models.length + " models", ""],
      ["Batches", active.length, "in progress · " + batches.length + " listed", ""],
    ];
    $("tiles").innerHTML = tiles.map(([label, value, note, cls]) =>
      tag("div", { class: "tile " + cls }) + '<div class="label">' + esc(label) + '</div><div class="value">' + esc(value) + "</div>" +
      tag("div", { class: "note", title: note }) + esc(note) + "</div></div>").join("");
  }

  function renderRoutes(s, models, colorOf) {
    const nodes = [];
    const seen = new Set();
    for (const r of s.routes || []) {
      seen.add(r.name);
      let v = state.routeViews.get(r.name);
      if (!v) state.routeViews.set(r.name, v = routeView(r.name));
      nodes.push(v.root);
      const h = r.history || {};
      const names = r.models || [];
      v.chain.textContent = names.join(" → ");
      v.stats.rps.textContent = v.rps.head.textContent = fmtRate(r.rps);
      v.stats.err.textContent = v.err.head.textContent = fmtPct(r.error_share);
      v.stats.p50.textContent = fmtMs(r.p50_ms);
      v.stats.p99.textContent = fmtMs(r.p99_ms);
      v.lat.head.innerHTML = '<span class="legend"><span>' + swatch("var(--line-p50)") + "p50 " + esc(fmtMs(r.p50_ms)) + "</span>" +
        "<span>" + swatch("var(--line-p99)") + "p99 " + esc(fmtMs(r.p99_ms)) + "</span></span>";
      drawHistory(v, h, r.name);
      const colors = names.map((m) => colorOf.get(m) || "var(--slate)");
      const served = h.served || {};
      const totals = names.map((m) => (served[m] || []).reduce((a, x) => a + (x || 0), 0));
      const all = totals.reduce((a, x) => a + x, 0);
      v.share.head.innerHTML = '<span class="legend">' +
        names.map((m, k) => "<span>" + swatch(colors[k]) + esc(m) + " " + (all ? fmtPct(totals[k] / all) : "—") + "</span>").join("") + "</span>";
      drawShare(v.share, served, names, colors, r.name + ": share of requests served by each model, last 15 minutes");
      renderModels(v, names, models);
    }
    for (const name of [...state.routeViews.keys()]) if (!seen.has(name)) state.routeViews.delete(name);
    placeInOrder($("routes"), nodes);
    if (!nodes.length) $("routes").innerHTML = '<div class="card empty">No routes configured.</div>';
  }

  function renderModels(routeV, names, models) {
    const nodes = names.map((name, rank) => {
      let v = routeV.modelViews.get(name);
      if (!v) routeV.modelViews.set(name, v = modelView(name));
      const m = models.get(name) || { name, breaker: "closed", history: {} };
      const open = m.breaker === "open";
      v.rank.textContent = String(rank + 1);
      v.sub.textContent = [m.provider, m.upstream_model].filter(Boolean).join(" · ");
      v.breaker.className = "badge breaker " + m.breaker;
      v.breaker.textContent = m.breaker;
      v.breaker.title = "circuit breaker " + m.breaker.replace("_", " ") +
        (m.consecutive_failures ? ", " + m.consecutive_failures + " consecutive failures" : "");
      // tick() writes the countdowns from these deadlines on the local clock.
      v.left.dataset.deadline = open && m.open_remaining_ms != null ? state.receivedAt + m.open_remaining_ms : "";
      v.left.dataset.suffix = " left";
      v.root.classList.toggle("is-open", open);
      v.root.classList.toggle("is-drained", !!m.drained);
      v.drained = optionalBadge(v.badges, v.drained, !!m.drained, () => {
        const b = el("span", "badge drained", "drained");
        b.dataset.testid = "drained-" + name;
        return b;
      });
      if (v.drained) v.drained.title = "drained by " + (m.drained_by || "an admin");
      v.limited = optionalBadge(v.badges, v.limited, m.rate_limited_remaining_ms != null, () => el("span", "badge limited"));
      if (v.limited) {
        v.limited.dataset.deadline = state.receivedAt + m.rate_limited_remaining_ms;
        v.limited.dataset.prefix = "rate limited ";
      }
      const pending = state.pendingDrain.has(name);
      v.button.textContent = m.drained ? "Undrain" : "Drain";
      v.button.classList.toggle("primary", !!m.drained);
      v.button.disabled = pending;
      v.button.setAttribute("aria-busy", String(pending));
      v.button.title = m.drained ? "Put " + name + " back in rotation" : "Take " + name + " out of rotation (its requests go to the next model)";
      v.stats.inflight.textContent = m.in_flight != null ? String(m.in_flight) : "—";
      v.stats.rps.textContent = fmtRate(m.rps);
      v.stats.err.textContent = fmtPct(m.error_share);
      v.stats.p50.textContent = fmtMs(m.p50_ms);
      v.stats.p99.textContent = fmtMs(m.p99_ms);
      drawHistory(v, m.history || {}, name);
      v.lastError.hidden = !m.last_error;
      v.lastError.querySelector(".mono").textContent = m.last_error || "";
      return v.root;
    });
    placeInOrder(routeV.models, nodes);
  }

  const BATCH_PARTS = [["succeeded", "var(--green)"], ["errored", "var(--red)"], ["canceled", "var(--slate)"], ["expired", "var(--violet)"]];
  const BATCH_BADGE = { in_progress: "active", canceling: "half_open", ended: "closed" };

  function batchRow(b, nowMs) {
    const c = b.request_counts || {};
    const total = ["processing", "succeeded", "errored", "canceled", "expired"].reduce((a, k) => a + (c[k] || 0), 0);
    const done = total - (c.processing || 0);
    const status = b.processing_status || "unknown";
    const segment = ([k, color]) => tag("span", { style: "width:" + (c[k] / total * 100).toFixed(2) + "%;background:" + color, title: k + " " + c[k] });
    const bar = BATCH_PARTS.filter(([k]) => c[k]).map((part) => segment(part) + "</span>").join("");
    const counts = BATCH_PARTS.filter(([k], i) => i === 0 || c[k])
      .map(([k, color]) => tag("i", { style: "--k:" + color }) + esc((c[k] || 0) + " " + k) + "</i>").join(" ");
    return '<div class="batch"><div>' + tag("div", { class: "id mono" }) + esc(b.id) + "</div>" +
      '<div class="counts">created ' + esc(b.created_at_ms ? fmtAgo(nowMs - b.created_at_ms) : "—") + "</div></div>" +
      tag("span", { class: "badge " + (BATCH_BADGE[status] || "plain") }) + esc(status.replace("_", " ")) + "</span>" +
      '<div class="bar-wrap">' +
      tag("div", { class: "bar", role: "progressbar", "aria-label": b.id + " progress",
        "aria-valuemin": 0, "aria-valuemax": total, "aria-valuenow": done }) +
      bar + "</div></div>" +
      '<div class="counts"><b>' + done + " / " + total + "</b> done " + counts + "</div></div>";
  }

  function renderBatches(s) {
    const batches = s.batches || [];
    const key = JSON.stringify(batches) + Math.floor(s.now_ms / 10000);   // "created … ago" moves every 10 s
    if (key === state.keys.batches) return;
    state.keys.batches = key;
    $("batches-note").textContent = batches.length ? batches.length + " listed" : "";
    $("batches").innerHTML = batches.length ? batches.map((b) => batchRow(b, s.now_ms)).join("") : '<div class="empty">No batches.</div>';
  }

  function decisionRow(d) {
    const st = d.status || 0;
    const attempts = (d.attempts || [])
      .map((a) => tag("span", { class: "chip " + (/:\s*2\d\d\b/.test(a) ? "ok" : "fail") }) + esc(a) + "</span>").join("");
    return tag("tr", { class: d.downgraded ? "downgraded" : "" }) +
      '<td class="d-time num">' + esc(fmtTime(d.ts_ms)) + "</td>" +
      '<td class="d-req mono">' + esc(d.request_id || "—") + "</td>" +
      '<td class="d-route">' + esc(d.route || "—") + "</td>" +
      '<td class="d-model">' + esc(d.model || "none") + "</td>" +
      '<td class="d-status">' + tag("span", { class: "status s" + String(st)[0] }) + esc(st || "—") + "</span></td>" +
      '<td class="d-out">' + esc(d.outcome || "—") + (d.downgraded ? '<span class="tag">DOWNGRADED</span>' : "") + "</td>" +
      '<td class="d-att"><div class="chips">' + attempts + "</div></td>" +
      '<td class="d-dur r num">' + esc(fmtMs(d.duration_ms)) + "</td></tr>";
  }

  function renderDecisions(s) {
    const list = (s.decisions || []).slice()
      .sort((a, b) => (b.downgraded ? 1 : 0) - (a.downgraded ? 1 : 0) || (b.ts_ms || 0) - (a.ts_ms || 0))
      .slice(0, 50);
    const key = JSON.stringify(list);
    if (key === state.keys.decisions) return;
    state.keys.decisions = key;
    const down = list.filter((d) => d.downgraded).length;
    $("decisions-note").textContent = list.length ? "last " + list.length + " · " + down + " downgraded, shown first" : "";
    $("decisions").innerHTML = list.length ? list.map(decisionRow).join("") : '<tr><td colspan="8" class="empty">No requests yet.</td></tr>';
  }

  // Every 200 ms: countdowns from the last snapshot on the local clock, the age of the data, the reconnect banner, the stall check.
  function tick() {
    const now = performance.now();
    for (const n of document.querySelectorAll("[data-deadline]")) {
      n.textContent = n.dataset.deadline ? (n.dataset.prefix || "") + fmtLeft(Number(n.dataset.deadline) - now) + (n.dataset.suffix || "") : "";
    }
    if (state.snap) {
      const age = now - state.receivedAt;
      const up = $("updated");
      up.innerHTML = '<span class="word">updated </span>' + esc(fmtTime(state.snap.now_ms) + (age > STALE_MS ? " (" + fmtAgo(age) + ")" : ""));
      up.classList.toggle("stale", age > STALE_MS);
    }
    const banner = $("banner");
    banner.hidden = $("conn").dataset.state !== "reconnecting";
    if (!banner.hidden) {
      const wait = state.retryAt - now;
      banner.textContent = "Connection lost (" + state.retryReason + "). " +
        (wait > 0 ? "Reconnecting in " + Math.ceil(wait / 1000) + " s…" : "Reconnecting…") +
        (state.snap ? " The figures below are from " + fmtTime(state.snap.now_ms) + "." : "");
    }
    if (state.live && now - state.lastByteAt > STALL_MS) scheduleRetry("no data for " + STALL_MS / 1000 + " s");
  }

  setInterval(tick, 200);
  $("app").hidden = false;
  connect();
})();
</script>
</body>
</html>
"""#
}
