// Temporal Flow's web UI: definitions, runs, and a run drawn on its document's graph.
// Plain DOM code; the graph's layout is dagre's (vendored by `make ui-assets`).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const TOKEN_KEY = "tflow-ui-token";
// Until /api/config answers, assume the defaults of `tflow ui`.
const DEFAULT_CONFIG = { pollMs: 1500, actions: true, graphLibrary: true };
let config = DEFAULT_CONFIG;
let pollTimer = null;

// ---------------------------------------------------------------- helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function when(text) {
  return text ? new Date(text).toLocaleString() : "-";
}

function duration(start, end) {
  if (!start || !end) return "-";
  const ms = new Date(end) - new Date(start);
  return ms < 1000 ? `${ms} ms` : ms < 120000 ? `${(ms / 1000).toFixed(1)} s`
    : `${Math.round(ms / 60000)} min`;
}

function badge(text) {
  return el("span", { class: `badge ${text}` }, text || "-");
}

function pretty(value) {
  return el("pre", {}, JSON.stringify(value, null, 2));
}

class ApiError extends Error {
  constructor(status, reason, detail, signIn) {
    super(detail);
    this.status = status;
    this.reason = reason;
    this.signIn = signIn;
  }
}

// ---------------------------------------------------------------- the token

// Kept for this browser tab only, and sent with every API call.
function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// `tflow ui` prints its URL with the token in the fragment (#token=...), which no
// server sees: take it into the tab's storage and out of the address bar.
function tokenFromUrl() {
  const match = location.hash.match(/^#token=([^&]+)/);
  if (!match) return false;
  setToken(decodeURIComponent(match[1]));
  history.replaceState(null, "", `${location.pathname}${location.search}#/`);
  return true;
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (err) {
    throw new ApiError(0, "unreachable", `the UI server is not reachable (${err.message})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const detail = body && body.detail ? body.detail : response.statusText;
    throw new ApiError(response.status, body && body.reason, detail, body && body.signIn);
  }
  return body;
}

function banner(text, ok = false) {
  const box = document.getElementById("banner");
  box.textContent = text || "";
  box.className = ok ? "ok" : "";
  box.hidden = !text;
}

function problem(err) {
  return el("div", { class: "note problem" }, `${err.status || ""} ${err.message}`.trim());
}

function params() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  return { path, query: new URLSearchParams(query || "") };
}

// ---------------------------------------------------------------- definitions

async function showDefinitions(main, query) {
  const namespace = query.get("namespace") || "";
  const data = await api(`/api/definitions${namespace ? `?namespace=${encodeURIComponent(namespace)}` : ""}`);
  const namespaces = [...new Set(data.definitions.map((d) => d.namespace))];
  const picker = el("select", { id: "namespace-filter", onchange: (event) => {
    location.hash = event.target.value ? `#/?namespace=${encodeURIComponent(event.target.value)}` : "#/";
  } }, el("option", { value: "" }, "every namespace"),
  ...(namespace && !namespaces.includes(namespace) ? [namespace] : []).concat(namespaces)
    .map((n) => el("option", { value: n, selected: n === namespace }, n)));
  const rows = data.definitions.map((d) =>
    el(
      "tr",
      {},
      el("td", {}, d.namespace),
      el(
        "td",
        {},
        el("a", { href: `#/runs?definition=${encodeURIComponent(`${d.namespace}/${d.name}`)}` },
          d.name)
      ),
      el("td", { title: d.readyMessage || "" }, badge(d.ready || "Unknown"), " ",
        el("span", { class: "muted" }, d.readyReason || "")),
      el("td", {}, d.taskQueue || "-"),
      el("td", {}, d.schedule.length ? d.schedule.join(", ") : "-"),
      el("td", {}, `${d.minReplicas ?? "-"} – ${d.maxReplicas ?? "-"}`),
      el("td", {}, d.running ?? "-"),
      el("td", {}, d.routes.length
        ? d.routes.map((r) => el("div", {}, r.name, " ",
          el("code", {}, JSON.stringify(r.match || {}))))
        : "-")
    )
  );
  const listeners = data.listeners.map((l) =>
    el("tr", {}, el("td", {}, l.namespace), el("td", {}, l.name), el("td", {}, l.type || "-"),
      el("td", {}, badge(l.ready || "Unknown")), el("td", {}, l.runControl ? "on" : "off"))
  );
  main.replaceChildren(
    el("h2", {}, "Definitions ", picker),
    ...data.notes.map((n) => el("div", { class: "note" }, n)),
    el(
      "table",
      { id: "definitions" },
      el("thead", {}, el("tr", {}, ...["namespace", "definition", "ready", "task queue",
        "schedule", "workers (min – max)", "open runs", "routes"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 8 },
        "no WorkflowDefinitions")))
    ),
    el("h2", {}, "Listeners"),
    el(
      "table",
      { id: "listeners" },
      el("thead", {}, el("tr", {}, ...["namespace", "listener", "type", "ready", "run control"]
        .map((h) => el("th", {}, h)))),
      el("tbody", {}, listeners.length ? listeners : el("tr", {}, el("td", { colspan: 5 },
        "no Listeners")))
    )
  );
}

// ---------------------------------------------------------------- runs

const FILTERS = ["status", "currentTask", "eventType", "eventSource", "namespace"];

async function showRuns(main, query) {
  const definition = query.get("definition") || "";
  const pages = (query.get("pages") || "").split(",").filter(Boolean);
  const page = pages.length ? pages[pages.length - 1] : "";
  const search = new URLSearchParams();
  if (definition) search.set("definition", definition);
  for (const key of FILTERS) if (query.get(key)) search.set(key, query.get(key));
  if (page) search.set("page", page);

  const form = el("form", { class: "filters", id: "run-filters" },
    el("label", {}, "status ", el("select", { name: "status" },
      ...["", "running", "completed", "failed", "cancelled", "terminated", "timedout"].map((s) =>
        el("option", { value: s, selected: s === (query.get("status") || "") }, s || "any")))),
    ...FILTERS.slice(1).map((key) => el("label", {}, `${key} `,
      el("input", { name: key, value: query.get(key) || "", size: 14 }))),
    el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    if (definition) next.set("definition", definition);
    for (const [key, value] of new FormData(form)) if (value) next.set(key, value);
    location.hash = `#/runs?${next}`;
  });

  main.replaceChildren(el("h2", {}, definition ? `Runs of ${definition}` : "Runs"), form,
    el("p", { class: "muted" }, "Loading…"));
  if (definition) {
    const [ns, name] = definition.split("/");
    api(`/api/definitions/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`).catch((err) => {
      if (err.status === 404) main.insertBefore(problem(err), form);
    });
  }
  const data = await api(`/api/runs?${search}`);
  const rows = data.runs.map((r) =>
    el("tr", {},
      el("td", {}, el("a", { href: `#/run?id=${encodeURIComponent(r.workflowId)}`,
        class: "run-link" }, r.workflowId)),
      el("td", {}, r.definition || "-"),
      el("td", {}, badge(r.status)),
      el("td", {}, r.currentTask || "-"),
      el("td", {}, r.eventType ? `${r.eventType} (${r.eventSource || "-"})` : "-"),
      el("td", {}, when(r.started)),
      el("td", {}, when(r.closed)))
  );
  const base = new URLSearchParams(query);
  const pager = el("div", { class: "pager" });
  if (pages.length) {
    const back = new URLSearchParams(base);
    back.set("pages", pages.slice(0, -1).join(","));
    pager.append(el("a", { href: `#/runs?${back}`, id: "previous-page" }, "← Previous"));
  }
  pager.append(el("span", { class: "muted" }, `page ${pages.length + 1}, ${data.runs.length} runs`));
  if (data.nextPageToken) {
    const next = new URLSearchParams(base);
    next.set("pages", [...pages, data.nextPageToken].join(","));
    pager.append(el("a", { href: `#/runs?${next}`, id: "next-page" }, "Next →"));
  }
  main.lastChild.replaceWith(
    el("table", { id: "runs" },
      el("thead", {}, el("tr", {}, ...["workflow id", "definition", "status", "current task",
        "event", "started", "closed"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 7 }, "no runs")))),
    pager);
  // For the benchmark (bench/bench_ui.py): when a page of runs is on the screen.
  performance.mark("tflow:runs-shown");
}

// ---------------------------------------------------------------- the graph

const OUTCOME_STATE = {
  completed: "done",
  faulted: "failed",
  skipped: "skipped",
  cancelled: "cancelled",
  continued: "running",
};

// Each task's state from the task log; a later entry of a task (a loop) wins.
function taskStates(view) {
  const states = new Map();
  const entries = new Map();
  for (const entry of view.log || []) {
    let state = OUTCOME_STATE[entry.outcome];
    if (!state) state = ["listen", "wait"].includes(entry.kind) ? "waiting" : "running";
    states.set(entry.reference, state);
    entries.set(entry.reference, entry);
  }
  return { states, entries };
}

function nodeState(node, view, states) {
  if (node.id === "start") return view.log && view.log.length ? "done" : "";
  if (node.id === "stop") return view.status === "completed" ? "done" : "";
  if (states.has(node.reference)) return states.get(node.reference);
  if (node.shape === "catch") {
    for (const [ref, state] of states) {
      if (ref.startsWith(`${node.reference}/`)) return state === "done" ? "done" : "running";
    }
  }
  return "";
}

function measure(text, cls) {
  const probe = svg("svg", { width: 0, height: 0, style: "position:absolute" },
    svg("text", { class: cls, "font-size": cls === "kind" ? 11 : 12 }, text));
  document.body.append(probe);
  const width = probe.firstChild.getComputedTextLength();
  probe.remove();
  return width;
}

function drawGraph(graph) {
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 24, ranksep: 36, marginx: 12, marginy: 12 });
  for (const cluster of graph.clusters) {
    g.setNode(cluster.id, { label: cluster.label, cluster: true, paddingTop: 18 });
  }
  for (const node of graph.nodes) {
    const width = Math.max(measure(node.name, "name"), measure(node.kind, "kind")) + 24;
    g.setNode(node.id, { width: Math.max(width, 70), height: node.kind ? 40 : 28, data: node });
  }
  for (const cluster of graph.clusters) if (cluster.parent) g.setParent(cluster.id, cluster.parent);
  for (const node of graph.nodes) if (node.parent) g.setParent(node.id, node.parent);
  graph.edges.forEach((edge, index) => {
    const label = edge.label || "";
    g.setEdge(edge.source, edge.target, {
      label, dashed: edge.dashed, width: label ? Math.min(measure(label, "kind"), 180) : 0,
      height: label ? 14 : 0, labelpos: "c",
    }, `e${index}`);
  });
  dagre.layout(g);

  const size = g.graph();
  const root = svg("svg", { width: Math.ceil(size.width), height: Math.ceil(size.height),
    viewBox: `0 0 ${Math.ceil(size.width)} ${Math.ceil(size.height)}`, id: "graph-svg",
    "font-family": "system-ui, sans-serif" },
  svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
  svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#5f6368" }))));
  // Outer clusters first, so inner ones are drawn over them.
  const depth = (id) => { let d = 0; for (let p = g.parent(id); p; p = g.parent(p)) d++; return d; };
  const clusters = graph.clusters.map((c) => c.id).sort((a, b) => depth(a) - depth(b));
  for (const id of clusters) {
    const c = g.node(id);
    if (!c || c.width === undefined) continue;
    root.append(svg("g", { class: "cluster", "data-cluster": id },
      svg("rect", { x: c.x - c.width / 2, y: c.y - c.height / 2, width: c.width,
        height: c.height, rx: 6 }),
      svg("text", { x: c.x - c.width / 2 + 6, y: c.y - c.height / 2 + 12 }, c.label)));
  }
  for (const e of g.edges()) {
    const edge = g.edge(e);
    const d = edge.points.map((p, i) => `${i ? "L" : "M"} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`)
      .join(" ");
    const group = svg("g", { class: edge.dashed ? "edge dashed" : "edge" },
      svg("path", { d, "marker-end": "url(#arrow)" }));
    if (edge.label && edge.x !== undefined) {
      group.append(svg("text", { x: edge.x, y: edge.y + 4, "text-anchor": "middle" },
        edge.label.length > 30 ? `${edge.label.slice(0, 29)}…` : edge.label));
    }
    root.append(group);
  }
  for (const node of graph.nodes) {
    const n = g.node(node.id);
    const rx = node.shape === "terminal" ? 14 : node.shape === "switch" ? 12 : 4;
    const group = svg("g", { class: "node", "data-node": node.id,
      "data-ref": node.reference || node.id, "data-name": node.name },
    svg("title", {}, node.reference || node.name),
    svg("rect", { x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width,
      height: n.height, rx }),
    svg("text", { x: n.x, y: node.kind ? n.y - 3 : n.y + 4, "text-anchor": "middle",
      class: "name" }, node.name));
    if (node.kind) {
      group.append(svg("text", { x: n.x, y: n.y + 12, "text-anchor": "middle",
        class: "kind" }, node.kind));
    }
    root.append(group);
  }
  return root;
}

function paintGraph(container, graph, view) {
  const { states, entries } = taskStates(view);
  for (const node of graph.nodes) {
    const group = container.querySelector(`g.node[data-node="${CSS.escape(node.id)}"]`);
    if (!group) continue;
    const state = nodeState(node, view, states);
    if (state) group.setAttribute("data-state", state);
    else group.removeAttribute("data-state");
    const entry = entries.get(node.reference);
    let tip = `${node.reference || node.name}${state ? `: ${state}` : ""}`;
    if (entry && entry.error) tip += `\n${entry.error.title || ""} ${entry.error.detail || ""}`;
    group.querySelector("title").textContent = tip;
  }
}

// ---------------------------------------------------------------- a run

async function act(workflowId, action, extra = {}, body = undefined) {
  const search = new URLSearchParams({ id: workflowId, ...extra });
  const headers = { "Content-Type": "application/json" };
  try {
    await api(`/api/run/${action}?${search}`, { method: "POST", headers, body });
    banner(`${action}${extra.name ? ` ${extra.name}` : ""} sent to ${workflowId}`, true);
  } catch (err) {
    const hint = err.status === 401 ? " — sign in again" : "";
    banner(`${err.status} ${err.reason || ""}: ${err.message}${hint}`);
  }
}

function actionsPanel(view) {
  const name = el("input", { id: "signal-name", placeholder: "signal or event type", size: 18 });
  const data = el("textarea", { id: "signal-data", placeholder: "data as JSON, e.g. {\"by\": \"ops\"}" });
  const send = (type) => {
    const text = data.value.trim();
    if (text) {
      try { JSON.parse(text); } catch (err) { banner(`the data is not JSON: ${err.message}`); return; }
    }
    act(view.workflowId, "signal", { name: type }, text || undefined);
  };
  const quick = el("span", { id: "quick-sends" });
  let confirmTerminate = false;
  const terminate = el("button", { class: "danger", id: "terminate", type: "button" }, "Terminate");
  terminate.addEventListener("click", () => {
    if (!confirmTerminate) {
      confirmTerminate = true;
      terminate.textContent = "Really terminate?";
      return;
    }
    act(view.workflowId, "terminate");
  });
  return el("div", { class: "actions", id: "actions" },
    el("div", { class: "row" }, el("strong", {}, "Send an event "), quick),
    el("div", { class: "row" }, name,
      el("button", { type: "button", id: "send-signal",
        onclick: () => name.value.trim() && send(name.value.trim()) }, "Send")),
    data,
    el("div", { class: "row" },
      el("button", { type: "button", id: "cancel", onclick: () => act(view.workflowId, "cancel") },
        "Cancel run"),
      terminate));
}

function updateQuickSends(container, view) {
  const quick = container.querySelector("#quick-sends");
  if (!quick) return;
  const types = [...new Set(view.waiting.flatMap((w) => w.events))];
  if (quick.dataset.types === types.join(",")) return;
  quick.dataset.types = types.join(",");
  const data = container.querySelector("#signal-data");
  quick.replaceChildren(...types.map((type) => el("button", { type: "button", "data-send": type,
    onclick: () => {
      const text = data.value.trim();
      act(view.workflowId, "signal", { name: type }, text || undefined);
    } }, type)));
}

// The task log rows whose data is open, so that polling the run does not close them.
const openData = new Set();

// A task log preview: compact JSON cut by the worker at a few kilobytes (`truncated`).
function preview(part) {
  if (!part) return el("p", { class: "muted" }, "not kept (the run keeps the newest tasks' data)");
  if (part.truncated) {
    return [el("pre", {}, `${part.text}…`),
      el("p", { class: "muted" }, `cut at ${part.text.length} characters`)];
  }
  try {
    return pretty(JSON.parse(part.text));
  } catch (_) {
    return el("pre", {}, part.text);
  }
}

function taskData(entry) {
  // Older workers' logs and skipped tasks carry no data.
  if (!entry.input && !entry.output) return null;
  const key = `${entry.reference}@${entry.started_at}`;
  return el("details", { class: "task-data", open: openData.has(key),
    ontoggle: (event) => (event.target.open ? openData.add(key) : openData.delete(key)) },
  el("summary", {}, "input and output"),
  el("div", {}, "input"), preview(entry.input),
  entry.output || entry.outcome === "completed" ? [el("div", {}, "output"), preview(entry.output)] : null);
}

function taskLog(view) {
  const byRef = new Map();
  for (const call of view.taskData) {
    if (!byRef.has(call.reference)) byRef.set(call.reference, []);
    byRef.get(call.reference).push(call);
  }
  const rows = (view.log || []).map((entry) => {
    const calls = byRef.get(entry.reference) || [];
    const last = calls[calls.length - 1];
    // A `run: workflow` child's id is its parent's id and the task's reference, dotted.
    const child = entry.kind === "run"
      ? `${view.workflowId}/${entry.reference.replace(/^\//, "").replaceAll("/", ".")}`
      : null;
    return el("tr", { "data-ref": entry.reference },
      el("td", { title: entry.reference }, entry.name,
        child ? [" ", el("a", { href: `#/run?id=${encodeURIComponent(child)}`, class: "child-run" },
          "child run")] : null),
      el("td", {}, entry.kind),
      el("td", {}, badge(entry.outcome)),
      el("td", { title: when(entry.started_at) },
        entry.started_at ? new Date(entry.started_at).toLocaleTimeString() : "-"),
      el("td", {}, duration(entry.started_at, entry.ended_at)),
      el("td", {},
        entry.error ? el("div", { class: "error" }, `${entry.error.title || ""}: ${entry.error.detail || ""}`) : null,
        taskData(entry),
        last ? el("details", {}, el("summary", {}, `${last.activity}${calls.length > 1 ? ` ×${calls.length}` : ""}`),
          el("div", {}, "input"), pretty(last.input),
          last.failure ? el("div", { class: "error" }, `failed: ${last.failure}`)
            : [el("div", {}, "output"), pretty(last.output)]) : null));
  });
  return el("table", { id: "task-log" },
    el("thead", {}, el("tr", {}, ...["task", "kind", "outcome", "started", "took", "detail"]
      .map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
}

function waitingBox(view) {
  if (!view.waiting.length) return el("div", { id: "waiting" });
  return el("div", { id: "waiting" }, ...view.waiting.map((w) => el("div", { class: "waiting-box" },
    el("strong", {}, `${w.name} is waiting`),
    w.events.length ? [" for ", el("code", {}, w.events.join(" | "))] : null,
    w.timeout ? ` — timeout ${w.timeout}` : null,
    w.deadline ? ` (until ${when(w.deadline)})` : null)));
}

function failedBox(view) {
  const failed = (view.log || []).filter((e) => e.outcome === "faulted" && e.error);
  // The innermost failure says most; its enclosing tasks repeat it.
  const shown = failed.filter((e) => !failed.some((o) => o !== e && o.reference.startsWith(`${e.reference}/`)));
  return el("div", { id: "failed" }, ...shown.map((e) => el("div", { class: "failed-box" },
    el("strong", {}, `${e.name} failed`), `: ${e.error.title || ""}`,
    e.error.detail ? ` — ${e.error.detail}` : null,
    e.error.status ? el("span", { class: "muted" }, ` (${e.error.status}, ${e.error.type || ""})`) : null)));
}

function facts(view) {
  const link = view.temporalUrl
    ? el("a", { href: view.temporalUrl, target: "_blank", rel: "noopener" }, "open in Temporal's UI")
    : null;
  return el("div", { class: "facts", id: "facts" },
    el("span", {}, "status ", el("span", { id: "run-status", class: `badge ${view.status}` }, view.status)),
    view.phase ? el("span", {}, "phase ", el("span", { id: "run-phase", class: `badge ${view.phase}` }, view.phase)) : null,
    el("span", {}, "definition ", view.definition || "-"),
    el("span", {}, "namespace ", view.namespace || "-"),
    el("span", {}, "task queue ", view.taskQueue),
    el("span", {}, "started ", when(view.started)),
    view.closed ? el("span", {}, "closed ", when(view.closed)) : null,
    link);
}

function outcome(view) {
  if (view.error) return el("div", { id: "outcome" }, el("strong", {}, "error"), pretty(view.error));
  if (view.status === "completed") return el("div", { id: "outcome" }, el("strong", {}, "output"), pretty(view.output));
  return el("div", { id: "outcome" });
}

async function showRun(main, query) {
  const workflowId = query.get("id");
  const first = await api(`/api/run?id=${encodeURIComponent(workflowId)}`);
  const graphBox = el("div", { class: "graph", id: "graph" });
  if (first.graph && window.dagre) {
    graphBox.append(drawGraph(first.graph));
  } else if (first.graph) {
    graphBox.append(el("div", { class: "note" },
      "the graph layout library is not installed on this server (make ui-assets)"));
  } else {
    graphBox.append(el("div", { class: "note" }, "no graph for this run"));
  }
  const side = el("div", { id: "side" });
  const notes = el("div", { id: "notes" });
  main.replaceChildren(
    el("h2", {}, "Run ", el("code", {}, first.workflowId)),
    el("div", { id: "facts" }),
    notes,
    el("div", { class: "run" },
      el("div", {},
        el("div", { class: "legend" }, ...["done", "running", "waiting", "failed", "skipped"]
          .map((s) => el("span", { class: `badge ${s}` }, s))),
        graphBox),
      side));
  side.append(el("div", { id: "waiting" }), el("div", { id: "failed" }), actionsPanel(first), el("div", { id: "outcome" }),
    el("h3", {}, "Task log"), el("div", { id: "log" }));

  const render = (view) => {
    main.querySelector("#facts").replaceWith(facts(view));
    notes.replaceChildren(...view.notes.map((n) => el("div", { class: "note" }, n)));
    if (first.graph && window.dagre) paintGraph(graphBox, first.graph, view);
    side.querySelector("#waiting").replaceWith(waitingBox(view));
    side.querySelector("#failed").replaceWith(failedBox(view));
    side.querySelector("#outcome").replaceWith(outcome(view));
    side.querySelector("#log").replaceChildren(view.log ? taskLog(view) : el("p", { class: "muted" }, "no task log"));
    updateQuickSends(side, view);
    // A closed run takes no actions.
    side.querySelector("#actions").hidden = view.status !== "running" || !config.actions;
    main.dataset.status = view.status;
  };
  render(first);
  const poll = async () => {
    if (params().query.get("id") !== workflowId) return;
    try {
      const view = await api(`/api/run?id=${encodeURIComponent(workflowId)}`);
      render(view);
      if (view.status !== "running") return;
    } catch (err) {
      // A token that expired while the page was open: ask for a new one.
      if (err.status === 401) {
        showSignIn(main, err);
        return;
      }
      notes.replaceChildren(problem(err));
    }
    pollTimer = setTimeout(poll, config.pollMs);
  };
  if (first.status === "running") pollTimer = setTimeout(poll, config.pollMs);
}

// ---------------------------------------------------------------- signing in

function showSignIn(main, err) {
  clearTimeout(pollTimer);
  showSession();
  const input = el("textarea", { id: "sign-in-token", rows: 4, autocomplete: "off",
    spellcheck: "false", placeholder: "paste the token here" });
  const form = el("form", { id: "sign-in", class: "sign-in" },
    el("h2", {}, "Sign in"),
    token() ? el("div", { class: "note problem" }, `${err.status} ${err.message}`) : null,
    el("p", {}, "This UI needs a token for every page: ", el("code", {},
      err.signIn || "kubectl create token <serviceaccount> -n <namespace>"), "."),
    el("p", { class: "muted" }, "What you see and may do follows that token's grants, namespace "
      + "by namespace. It is kept in this browser tab only and sent as Authorization: Bearer."),
    input,
    el("div", { class: "row" }, el("button", { type: "submit" }, "Sign in")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) return;
    setToken(value);
    loadConfig();
    route();
  });
  main.replaceChildren(form);
}

function showSession() {
  const who = document.getElementById("who");
  const signOut = document.getElementById("sign-out");
  signOut.hidden = !token();
  if (!token()) who.textContent = "not signed in";
  else if (config.user) who.textContent = `signed in as ${config.user}`;
  else who.textContent = "signed in";
}

function signOut() {
  setToken("");
  config = DEFAULT_CONFIG;
  route();
}

async function loadConfig() {
  try {
    config = await api("/api/config");
    const actions = document.getElementById("actions");
    if (actions && !config.actions) actions.hidden = true;
  } catch (err) {
    // Not signed in: the page itself asks for the token.
    if (err.status !== 401) banner(`the UI server did not answer: ${err.message}`);
  }
  showSession();
}

// ---------------------------------------------------------------- routing

async function route() {
  clearTimeout(pollTimer);
  banner("");
  // The printed URL may also be pasted into a tab that is already open.
  if (tokenFromUrl()) loadConfig();
  // Each visit renders into a container of its own: a slower, earlier visit that is
  // still loading then fills a container no longer on the page, never the current one.
  const main = el("div", { class: "view" });
  document.getElementById("main").replaceChildren(main);
  const { path, query } = params();
  try {
    if (path === "/runs") await showRuns(main, query);
    else if (path === "/run") await showRun(main, query);
    else await showDefinitions(main, query);
  } catch (err) {
    if (err.status === 401) showSignIn(main, err);
    else if (err.status === 403) main.replaceChildren(el("h2", {}, "Not allowed"), problem(err));
    else main.replaceChildren(el("h2", {}, "Something is not available"), problem(err));
  }
}

async function start() {
  document.getElementById("sign-out").addEventListener("click", signOut);
  showSession();
  // The page itself does not wait for the configuration (only a run's polling uses it).
  loadConfig();
  window.addEventListener("hashchange", route);
  await route();
}

start();
