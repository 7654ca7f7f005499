// mesh dashboard: the pages of viz/dashboard, plain JavaScript, no dependencies.
// Routes (location.hash): #/ns/NS[/KIND] is a namespace, #/ns/NS/KIND/NAME a workload.
"use strict";

const state = { config: null, gen: 0, tap: null };
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c));
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c));
  return e;
}

const fmt = {
  pct: (v) => (v == null ? "-" : (v * 100).toFixed(2) + "%"),
  rps: (v) => (v == null ? "-" : v.toFixed(1) + "rps"),
  ms: (v) => (v == null ? "-" : (v < 10 ? v.toFixed(2) : v.toFixed(0)) + "ms"),
  n: (v) => (v == null ? "-" : String(Math.round(v))),
};

function srClass(v) {
  if (v == null) return "num";
  return "num " + (v >= 0.99 ? "good" : v >= 0.95 ? "warn" : "bad");
}

async function getJSON(path, params) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) if (v) u.searchParams.set(k, v);
  const r = await fetch(u);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function setStatus(text, error) {
  const s = document.getElementById("status");
  s.textContent = text;
  s.className = "status" + (error ? " error" : "");
}

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const r = { ns: state.config.namespace, kind: "deployment", name: "" };
  if (parts[0] === "ns" && parts[1]) {
    r.ns = parts[1];
    if (parts[2]) r.kind = parts[2];
    if (parts[3]) r.name = parts[3];
  }
  return r;
}

function href(ns, kind, name) {
  let h = "#/ns/" + encodeURIComponent(ns);
  if (kind) h += "/" + encodeURIComponent(kind);
  if (name) h += "/" + encodeURIComponent(name);
  return h;
}

// The golden-metrics columns of mesh stat's rows.
const statCols = [
  ["MESHED", (r) => r.meshed_pods + "/" + r.total_pods, () => "num", "meshed"],
  ["SUCCESS", (r) => fmt.pct(r.success), (r) => srClass(r.success), "success"],
  ["RPS", (r) => fmt.rps(r.rps), () => "num", "rps"],
  ["P50", (r) => fmt.ms(r.latency_ms_p50), () => "num", "p50"],
  ["P95", (r) => fmt.ms(r.latency_ms_p95), () => "num", "p95"],
  ["P99", (r) => fmt.ms(r.latency_ms_p99), () => "num", "p99"],
  ["TCP", (r) => fmt.n(r.tcp_open_connections), () => "num", "tcp"],
  ["mTLS", (r) => (r.tls == null ? "-" : Math.round(r.tls * 100) + "%"), () => "num", "tls"],
];

function statTable(id, rows, link) {
  const head = el("tr", {}, el("th", {}, "NAME"), ...statCols.map(([h]) => el("th", { class: "num" }, h)));
  const body = el("tbody");
  for (const r of rows) {
    const name = link ? el("a", { href: link(r) }, r.name) : r.name;
    body.append(el("tr", { "data-name": r.name, "data-kind": r.kind },
      el("td", { class: "name" }, name),
      ...statCols.map(([, f, c, cls]) => el("td", { class: c(r) + " " + cls }, f(r)))));
  }
  if (!rows.length) body.append(el("tr", {}, el("td", { class: "empty", colspan: 9 }, "No resources found.")));
  return el("table", { id }, el("thead", {}, head), body);
}

// An edge without a src comes from callers without a proxy; one without a dst
// went nowhere the proxy could name (no endpoints, no service): two nodes apart.
const UNMESHED = "unmeshed", UNKNOWN = "unknown";

function nodeKey(res, end) {
  if (!res) return end === "dst" ? UNKNOWN : UNMESHED;
  return res.namespace + "/" + res.kind + "/" + res.name;
}

function nodeLabel(res, ns, key) {
  if (!res) return key === UNKNOWN ? "(unknown destinations)" : "(unmeshed callers)";
  const short = { deployment: "deploy", statefulset: "sts", daemonset: "ds", pod: "po", service: "svc" }[res.kind] || res.kind;
  return (res.namespace !== ns ? res.namespace + "/" : "") + short + "/" + res.name;
}

// topology draws the edges as an SVG graph, laid out deterministically: each node's
// column is its longest path from a node without callers, rows sorted by name.
function topology(edges, ns, current) {
  const nodes = new Map();
  for (const e of edges) {
    nodes.set(nodeKey(e.src, "src"), e.src);
    nodes.set(nodeKey(e.dst, "dst"), e.dst);
  }
  const keys = [...nodes.keys()].sort();
  const layer = new Map(keys.map((k) => [k, 0]));
  for (let i = 0; i < keys.length; i++) { // at most n passes: cycles stop growing
    let changed = false;
    for (const e of edges) {
      const s = nodeKey(e.src, "src"), d = nodeKey(e.dst, "dst");
      if (s !== d && layer.get(d) < layer.get(s) + 1 && layer.get(s) + 1 < keys.length) {
        layer.set(d, layer.get(s) + 1);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const cols = new Map();
  for (const k of keys) {
    const l = layer.get(k);
    if (!cols.has(l)) cols.set(l, []);
    cols.get(l).push(k);
  }
  const W = 190, H = 36, GX = 90, GY = 28, PAD = 10;
  const pos = new Map();
  let maxRows = 0;
  for (const [l, ks] of cols) {
    ks.forEach((k, i) => pos.set(k, { x: PAD + l * (W + GX), y: PAD + i * (H + GY) }));
    maxRows = Math.max(maxRows, ks.length);
  }
  const width = PAD * 2 + Math.max(1, cols.size) * (W + GX) - GX;
  const height = PAD * 2 + Math.max(1, maxRows) * (H + GY) - GY;
  const root = svg("svg", { id: "topology", viewBox: `0 0 ${width} ${height}`, width, height, "data-edges": edges.length });
  root.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse" },
    svg("path", { d: "M 0 0 L 10 5 L 0 10 z" })),
    svg("filter", { id: "label-bg", x: "-0.05", y: "-0.1", width: "1.1", height: "1.2" }, // the labels' opaque box
      svg("feFlood", { "flood-color": "#fff" }), svg("feComposite", { in: "SourceGraphic", operator: "over" }))));
  const labels = [];
  for (const e of edges) {
    const s = nodeKey(e.src, "src"), t = nodeKey(e.dst, "dst");
    const a = pos.get(s), b = pos.get(t);
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const mx = (x1 + x2) / 2;
    const d = x2 > x1 ? `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`
      : `M ${a.x + W / 2} ${a.y + H} C ${a.x + W / 2} ${a.y + H + 40}, ${b.x + W / 2} ${b.y + H + 40}, ${b.x + W / 2} ${b.y + H}`;
    const title = `${nodeLabel(e.src, ns, s)} → ${nodeLabel(e.dst, ns, t)}: ${e.secured ? "mTLS" : "not mTLS" + (e.no_tls_reason ? " (" + e.no_tls_reason + ")" : "")}, ${fmt.rps(e.rps)}`;
    root.append(svg("path", { class: "edge" + (e.secured ? "" : " plain"), d, "marker-end": "url(#arrow)",
      "data-src": s, "data-dst": t, "data-secured": e.secured }, svg("title", {}, title)));
    labels.push(svg("text", { class: "edge-label", filter: "url(#label-bg)", x: mx, y: (y1 + y2) / 2 - 6, "text-anchor": "middle" }, fmt.rps(e.rps)));
  }
  root.append(...labels); // over every edge, on a box of their own: no edge crosses a label
  for (const k of keys) {
    const res = nodes.get(k), p = pos.get(k);
    const cls = "node" + (res ? "" : " unmeshed") + (k === current ? " current" : "");
    const g = svg("g", { class: cls, "data-node": k, transform: `translate(${p.x},${p.y})` },
      svg("rect", { width: W, height: H, rx: 6 }),
      svg("text", { x: 10, y: H / 2 + 4 }, nodeLabel(res, ns, k)));
    if (res && res.kind !== "service") {
      const a = svg("a", { href: href(res.namespace, res.kind, res.name) });
      a.append(g);
      root.append(a);
    } else {
      root.append(g);
    }
  }
  return root;
}

function section(title, ...children) {
  return el("section", {}, el("h2", {}, ...title), ...children);
}

function replace(id, node) {
  const old = document.getElementById(id);
  if (old) old.replaceWith(node);
}

async function namespacePage(gen, r) {
  const main = document.getElementById("main");
  const kindSel = el("select", { id: "kind" }, ...state.config.kinds.map((k) => {
    const o = el("option", { value: k }, k);
    if (k === r.kind) o.selected = true;
    return o;
  }));
  kindSel.addEventListener("change", () => { location.hash = href(r.ns, kindSel.value); });
  main.replaceChildren(
    section(["Namespaces"], el("div", { id: "namespaces" }, el("p", { class: "empty" }, "loading…"))),
    section([r.kind + "s in " + r.ns + " ", kindSel], el("div", { id: "workloads" }, el("p", { class: "empty" }, "loading…"))),
    section(["Topology ", el("small", {}, "edges between the " + r.kind + "s of " + r.ns + ", solid: mTLS, dashed: not")],
      el("div", { id: "graph" }, el("p", { class: "empty" }, "loading…"))),
  );
  await refreshLoop(gen, async () => {
    const [nss, rows, edges] = await Promise.all([
      getJSON("/api/namespaces").catch((e) => e),
      getJSON("/api/stat", { namespace: r.ns, kind: r.kind }).catch((e) => e),
      getJSON("/api/edges", { namespace: r.ns, kind: r.kind }).catch((e) => e),
    ]);
    if (gen !== state.gen) return;
    replace("namespaces", wrap("namespaces", nss, (v) => statTable("namespaces-table", v, (x) => href(x.name))));
    replace("workloads", wrap("workloads", rows, (v) => statTable("workloads-table", v, (x) => href(r.ns, x.kind, x.name))));
    replace("graph", wrap("graph", edges, (v) => v.length ? topology(v, r.ns, "") : el("p", { class: "empty" }, "No edges.")));
    return [nss, rows, edges].find((x) => x instanceof Error);
  });
}

function wrap(id, v, render) {
  return el("div", { id }, v instanceof Error ? el("p", { class: "error" }, v.message) : render(v));
}

async function workloadPage(gen, r) {
  const main = document.getElementById("main");
  const resource = r.kind + "/" + r.name;
  const toggle = el("button", { id: "tap-toggle" }, "Stop");
  main.replaceChildren(
    section([resource + " ", el("small", {}, "in " + r.ns)], el("div", { id: "workload" }, el("p", { class: "empty" }, "loading…"))),
    section(["Routes ", el("small", {}, "inbound, per ServiceProfile route")], el("div", { id: "routes" }, el("p", { class: "empty" }, "loading…"))),
    section(["Edges ", el("small", {}, "its callers and destinations")], el("div", { id: "graph" }, el("p", { class: "empty" }, "loading…"))),
    section(["Live tap ", toggle, " ", el("small", { id: "tap-status" }, "")], tapTable()),
  );
  startTap(gen, r);
  toggle.addEventListener("click", () => {
    if (state.tap) { stopTap(); toggle.textContent = "Start"; } else { startTap(state.gen, r); toggle.textContent = "Stop"; }
  });
  const me = r.ns + "/" + r.kind + "/" + r.name;
  await refreshLoop(gen, async () => {
    const edgeKind = state.config.kinds.includes(r.kind) ? r.kind : "deployment";
    const [rows, routes, edges] = await Promise.all([
      getJSON("/api/stat", { namespace: r.ns, kind: r.kind, name: r.name }).catch((e) => e),
      getJSON("/api/routes", { namespace: r.ns, resource }).catch((e) => e),
      getJSON("/api/edges", { namespace: r.ns, kind: edgeKind }).catch((e) => e),
    ]);
    if (gen !== state.gen) return;
    replace("workload", wrap("workload", rows, (v) => statTable("workload-table", v, null)));
    replace("routes", wrap("routes", routes, routesTable));
    replace("graph", wrap("graph", edges, (v) => {
      const mine = v.filter((e) => nodeKey(e.src, "src") === me || nodeKey(e.dst, "dst") === me);
      return mine.length ? topology(mine, r.ns, me) : el("p", { class: "empty" }, "No edges.");
    }));
    return [rows, routes, edges].find((x) => x instanceof Error);
  });
}

function routesTable(rows) {
  const cols = [["SUCCESS", (x) => fmt.pct(x.success)], ["RPS", (x) => fmt.rps(x.rps)], ["P50", (x) => fmt.ms(x.latency_ms_p50)],
    ["P95", (x) => fmt.ms(x.latency_ms_p95)], ["P99", (x) => fmt.ms(x.latency_ms_p99)]];
  const body = el("tbody");
  for (const x of rows) {
    body.append(el("tr", { "data-route": x.route }, el("td", {}, x.route), el("td", {}, x.service || "-"),
      ...cols.map(([, f]) => el("td", { class: "num" }, f(x)))));
  }
  if (!rows.length) body.append(el("tr", {}, el("td", { class: "empty", colspan: 7 }, "No routes.")));
  return el("table", { id: "routes-table" },
    el("thead", {}, el("tr", {}, el("th", {}, "ROUTE"), el("th", {}, "SERVICE"), ...cols.map(([h]) => el("th", { class: "num" }, h)))), body);
}

function tapTable() {
  return el("table", { id: "tap" }, el("thead", {}, el("tr", {}, ...["TIME", "POD", "DIR", "METHOD", "AUTHORITY", "PATH", "STATUS", "LATENCY", "TLS", "PEER"]
    .map((h) => el("th", {}, h)))), el("tbody"));
}

const TAP_ROWS = 200;

function stopTap() {
  if (state.tap) state.tap.abort();
  state.tap = null;
}

async function startTap(gen, r) {
  stopTap();
  if (!state.config.tap) { tapStatus("tap is not available"); return; }
  const ctl = new AbortController();
  state.tap = ctl;
  const u = new URL("/api/tap", location.origin);
  u.searchParams.set("namespace", r.ns);
  u.searchParams.set("resource", r.kind + "/" + r.name);
  try {
    const resp = await fetch(u, { signal: ctl.signal });
    if (!resp.ok) { tapStatus((await resp.json()).error, true); return; }
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim() && gen === state.gen) tapRecord(JSON.parse(line));
      }
    }
    if (state.tap === ctl) tapStatus("the tap stream ended", true);
  } catch (e) {
    if (e.name !== "AbortError") tapStatus(e.message, true);
  }
}

function tapStatus(text, error) {
  const s = document.getElementById("tap-status");
  if (s) { s.textContent = text; s.className = error ? "error" : ""; }
}

function tapRecord(ev) {
  const body = document.querySelector("#tap tbody");
  if (!body) return;
  switch (ev.type) {
    case "dashboard.pods": tapStatus("tapping " + ev.pods.join(", ")); return;
    case "dashboard.warning": case "dashboard.error": tapStatus(ev.message, true); return;
    case "http": break;
    default: return;
  }
  const t = new Date(ev.time);
  const status = ev.status ? String(ev.status) + (ev.grpcStatus ? " grpc " + ev.grpcStatus : "") : (ev.error || "reset");
  const peer = ev.direction === "inbound" ? ev.clientId || ev.srcAddr : ev.serverId || ev.dstAddr;
  const row = el("tr", { class: "tap-event", "data-path": ev.path || "", "data-status": ev.status || 0,
    "data-proxy": ev.proxy || "", "data-direction": ev.direction || "", "data-tls": String(!!ev.tls), "data-peer": peer || "", "data-src": ev.srcAddr || "" },
    el("td", {}, t.toLocaleTimeString()), el("td", {}, ev.proxy || ""), el("td", {}, ev.direction === "inbound" ? "in" : "out"),
    el("td", {}, ev.method || ""), el("td", {}, ev.authority || ""), el("td", {}, ev.path || ""),
    el("td", { class: ev.status >= 500 || !ev.status ? "bad" : ev.status >= 400 ? "warn" : "good" }, status),
    el("td", { class: "num" }, fmt.ms((ev.latencyToEndNs || 0) / 1e6)), el("td", {}, ev.tls ? "mTLS" : "no"), el("td", {}, peer || ""));
  body.prepend(row);
  while (body.children.length > TAP_ROWS) body.lastChild.remove();
}

// refreshLoop runs load until the page changes, with the configured pause between
// two refreshes (each takes the window: the proxies are sampled twice).
async function refreshLoop(gen, load) {
  while (gen === state.gen) {
    setStatus("refreshing (window " + state.config.window + ")…");
    const err = await load();
    if (gen !== state.gen) return;
    if (err) setStatus("error: " + err.message, true);
    else setStatus("updated " + new Date().toLocaleTimeString() + " (window " + state.config.window + ")");
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
    await new Promise((res) => setTimeout(res, state.config.refreshSeconds * 1000));
  }
}

function crumbs(r) {
  const c = document.getElementById("crumbs");
  c.replaceChildren(el("a", { href: href(r.ns) }, "ns/" + r.ns));
  if (r.name) c.append(el("span", {}, "›"), el("a", { href: href(r.ns, r.kind, r.name) }, r.kind + "/" + r.name));
}

function route() {
  const gen = ++state.gen;
  stopTap();
  const r = parseRoute();
  crumbs(r);
  if (r.name) workloadPage(gen, r); else namespacePage(gen, r);
}

async function start() {
  try {
    state.config = await getJSON("/api/config");
  } catch (e) {
    setStatus("error: " + e.message, true);
    return;
  }
  window.addEventListener("hashchange", route);
  route();
}

start();
