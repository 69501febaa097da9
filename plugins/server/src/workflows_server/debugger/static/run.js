// The run page: one run of the store as a workflow, live while it goes on.
"use strict";

const el = dbg.el;
const handlerId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
const ui = { version: null, open: new Set(), graphFor: null, data: null, answered: false, linked: null };

function metaItem(value, label, id) { return el("div", { id: id || null }, el("b", { text: value }), el("span", { text: label })); }

function renderHeader(data) {
  document.title = data.workflow_name + " " + dbg.short(handlerId) + " · workflow debugger";
  document.getElementById("title").textContent = data.workflow_name;
  dbg.clear(document.getElementById("status")).append(dbg.badge(data.status));
  document.getElementById("handler-id").textContent = handlerId;
  const totals = data.totals;
  dbg.clear(document.getElementById("meta")).append(
    metaItem(dbg.time(data.started_at), "started"),
    metaItem(dbg.duration(data.duration_ms), data.finished_at ? "duration" : "running for", "meta-duration"),
    metaItem(String(totals.attempts), "step attempts"),
    metaItem(String(totals.retries), "retries"),
    metaItem(dbg.tokens(totals.tokens), "tokens (" + totals.prompt_tokens + " in, " + totals.completion_tokens + " out)", "meta-tokens"),
    metaItem(dbg.cost(totals.cost), "cost"),
    metaItem(String(totals.llm_calls), "LLM calls"),
  );
  const actions = dbg.clear(document.getElementById("actions"));
  const live = data.status === "running" || data.status === "waiting";
  if (live && !dbg.readOnly) actions.append(el("button", { class: "danger", id: "cancel", onclick: cancel, text: "Cancel run" }));
  if (data.served && !dbg.readOnly) actions.append(el("button", { id: "rerun", onclick: rerun, text: "Re-run with the same input" }));
  if (data.links.phoenix) actions.append(el("a", { id: "phoenix-link", href: data.links.phoenix, target: "_blank", rel: "noopener", text: "Trace in Phoenix ↗" }));
  if (data.links.langfuse) actions.append(el("a", { id: "langfuse-link", href: data.links.langfuse, target: "_blank", rel: "noopener", text: "Trace in Langfuse ↗" }));
  if (data.session_id) actions.append(el("a", { id: "session-link", href: "/sessions/" + encodeURIComponent(data.session_id), text: "Session (" + data.session_runs + (data.session_runs === 1 ? " run)" : " runs)") }));
  actions.append(el("a", { id: "export", href: "/api/runs/" + encodeURIComponent(handlerId) + "/export", download: "run-" + handlerId + ".json", text: "Export as JSON" }));
  if (data.links.trace_id) actions.append(el("span", { class: "small muted mono", text: "trace " + data.links.trace_id }));
  const lineage = dbg.clear(document.getElementById("lineage"));
  if (data.parent) {
    const link = el("a", { id: "parent-link", class: "mono", href: "/runs/" + encodeURIComponent(data.parent.handler_id), text: dbg.short(data.parent.handler_id) });
    lineage.append(data.parent.relation === "fork" ? "Forked from run " : "Re-run of run ", link, data.parent.relation === "fork" ? " after work item #" + data.parent.fork_seq : "");
  }
  if (data.children.length) {
    lineage.append(el("span", { text: (data.parent ? " · " : "") + "Re-runs and forks of this run: " }));
    for (const child of data.children) {
      lineage.append(el("a", { class: "mono child-link", href: "/runs/" + encodeURIComponent(child.handler_id), text: dbg.short(child.handler_id) }), " (" + child.relation + ") ");
    }
  }
}

// The wait a person answers: the latest open one (its question, its form from the awaited event's fields).
function openWait(data) {
  const open = data.waits.filter((w) => !w.ended_at);
  return open.length ? open[open.length - 1] : null;
}

function formOf(data) {
  const wait = openWait(data);
  return (wait && wait.form) || data.answer_form || { type: "HumanResponseEvent", fields: [{ name: "response", type: "string", required: true, title: "Response" }] };
}

function renderQuestion(data) {
  const box = document.getElementById("question");
  const waiting = data.status === "waiting";
  box.hidden = !waiting;
  if (!waiting) return;
  const wait = openWait(data);
  const question = (wait && wait.question) || data.question;
  const value = question ? question.value : null;
  const text = value && typeof value.prefix === "string" ? value.prefix : value ? dbg.json(value) : "This run waits for an event from outside.";
  document.getElementById("question-text").textContent = text;
  document.getElementById("question-since").textContent = wait
    ? "Step " + wait.step + " has waited since " + dbg.clock(wait.started_at) + " for a " + (wait.event_type || "event") + (wait.timeout ? " (times out after " + wait.timeout + " s)" : "")
    : "";
  const form = formOf(data);
  const fields = document.getElementById("answer-fields");
  if (fields.dataset.type === form.type) return;  // keep what the person is typing
  fields.dataset.type = form.type;
  dbg.clear(fields).append(el("div", { class: "small muted", text: "Answer with a " + form.type }));
  for (const field of form.fields) {
    const kind = field.type === "string" ? "string" : "json";
    fields.append(el("div", { class: "form-row" },
      el("label", { for: "answer-" + field.name, text: field.title + (field.required ? "" : " (optional)") + (kind === "json" ? " (" + (field.type || "JSON") + ", JSON)" : "") }),
      field.name === "response" ? el("textarea", { id: "answer-" + field.name, "data-field": field.name, "data-kind": kind, rows: 2, required: field.required })
        : el("input", { id: "answer-" + field.name, "data-field": field.name, "data-kind": kind, required: field.required })));
  }
}

async function sendAnswer(event) {
  event.preventDefault();
  const form = formOf(ui.data);
  const value = {};
  try {
    for (const input of document.querySelectorAll("#answer-fields [data-field]")) {
      const raw = input.value;
      if (!raw.trim() && !input.required) continue;
      value[input.dataset.field] = input.dataset.kind === "string" ? raw : JSON.parse(raw);
    }
  } catch (error) { dbg.notice("A field is not valid JSON: " + error.message); return; }
  const button = document.getElementById("answer-submit");
  button.disabled = true;
  try {
    await dbg.api("/events/" + encodeURIComponent(handlerId), { method: "POST", body: JSON.stringify({ event: { type: form.type, value: value } }) });
    button.textContent = "Answer sent";
    dbg.notice("");
    ui.version = null;
    document.getElementById("answer-fields").dataset.type = "";
  } catch (error) {
    dbg.notice("The answer was not accepted: " + error.message);
  } finally {
    setTimeout(() => { button.disabled = false; button.textContent = "Send answer"; }, 800);
  }
}

function renderOutcome(data) {
  const error = document.getElementById("error");
  error.hidden = !data.error;
  if (data.error) {
    const body = dbg.clear(document.getElementById("error-body"));
    body.append(el("div", {}, el("b", { text: (data.error.type ? data.error.type + ": " : "") }), data.error.message || data.handler.error || ""));
    if (data.error.traceback) body.append(el("pre", { class: "traceback", id: "traceback", text: data.error.traceback }));
  }
  const result = document.getElementById("result");
  result.hidden = data.status !== "completed";
  if (!result.hidden) document.getElementById("result-body").textContent = dbg.json(data.result_value);
}

function renderGraph(data) {
  const box = document.getElementById("graph");
  if (!data.graph) { box.textContent = "The graph needs the workflow to be served by this server (" + data.workflow_name + " is not)."; return; }
  if (ui.graphFor !== data.workflow_name) {
    box.innerHTML = data.graph.svg;  // drawn by the server (workflows.representation), text escaped there
    ui.graphFor = data.workflow_name;
  }
  for (const node of box.querySelectorAll("g.node.step")) {
    const info = data.steps[node.dataset.id];
    node.classList.remove("st-finished", "st-running", "st-waiting", "st-retrying", "st-failed");
    if (info) node.classList.add("st-" + info.state);
    const title = node.querySelector("title");
    if (title) title.textContent = "step " + node.dataset.id + (info ? ": " + info.state + ", " + info.attempts + " attempt(s)" : ": not run");
    node.dataset.state = info ? info.state : "idle";
  }
}

function attemptKey(a) { return a.seq + ":" + a.attempt + ":" + a.started_at; }

function renderTimeline(data) {
  const box = dbg.clear(document.getElementById("timeline"));
  if (!data.attempts.length && !data.waits.length) { box.append(el("div", { class: "empty", text: "No step has started yet." })); return; }
  const t0 = new Date(data.started_at).getTime();
  let t1 = data.finished_at ? new Date(data.finished_at).getTime() : Date.now();
  for (const a of data.attempts) t1 = Math.max(t1, new Date(a.started_at).getTime() + (a.duration_ms || 0));
  for (const w of data.waits) t1 = Math.max(t1, new Date(w.started_at).getTime() + (w.duration_ms || 0));
  const span = Math.max(t1 - t0, 1);
  const pos = (iso) => Math.max(0, Math.min(100, ((new Date(iso).getTime() - t0) / span) * 100));
  const width = (ms) => Math.max(0.4, Math.min(100, ((ms || 0) / span) * 100));
  const axis = el("div", { class: "ticks" });
  for (let i = 0; i <= 4; i++) axis.append(el("span", { style: "left:" + i * 25 + "%", text: dbg.duration((span * i) / 4) }));
  box.append(el("div", { class: "tl-axis" }, el("div", {}), axis));
  // Each wait is drawn on the row of the attempt it parked (the latest of its work item that
  // started before it), else on a row of its own (a run that asked its question with an event).
  const waitsOf = new Map();
  const alone = [];
  for (const w of data.waits) {
    const owner = data.attempts.filter((a) => a.seq === w.seq && a.step === w.step && new Date(a.started_at) <= new Date(w.started_at)).pop();
    if (owner) waitsOf.set(owner, (waitsOf.get(owner) || []).concat([w])); else alone.push(w);
  }
  for (const a of data.attempts) {
    const track = el("div", { class: "tl-track" });
    const outcome = a.outcome === "waiting" ? "waiting-step" : a.outcome;
    const label = a.step + " · " + dbg.duration(a.duration_ms) + (a.slowest ? " · slowest" : "");
    track.append(el("div", {
      class: "tl-bar " + outcome, style: "left:" + pos(a.started_at) + "%;width:" + width(a.duration_ms) + "%",
      title: a.step + " attempt " + a.attempt + ": " + a.outcome + " in " + dbg.duration(a.duration_ms) + (a.error ? "\n" + a.error.type + ": " + a.error.message : ""),
      "data-step": a.step, onclick: () => openAttempt(a),
    }, label));
    for (const call of a.llm) {
      track.append(el("div", { class: "tl-bar llm", style: "left:" + pos(call.started_at) + "%;width:" + width(call.duration_ms) + "%", title: "LLM call " + (call.model || "") + ": " + call.total_tokens + " tokens in " + dbg.duration(call.duration_ms) }));
    }
    for (const b of data.backoffs) {
      if (b.seq === a.seq && b.after_attempt === a.attempt) {
        track.append(el("div", { class: "tl-bar backoff", style: "left:" + pos(b.started_at) + "%;width:" + width(b.duration_ms) + "%",
          title: "retry back-off of " + (b.delay !== null ? b.delay + " s" : "?") + " after: " + (b.error_type || "") + ": " + (b.reason || "") }, "↻ retry in " + (b.delay !== null ? b.delay + " s" : "…")));
      }
    }
    for (const w of waitsOf.get(a) || []) track.append(waitBar(w, data, pos, width));
    const row = el("div", { class: "tl-row", "data-key": attemptKey(a) },
      el("div", { class: "tl-label", title: a.step + " attempt " + a.attempt }, el("b", { text: a.step }), " #" + a.attempt), track);
    box.append(row);
  }
  for (const w of alone) {
    box.append(el("div", { class: "tl-row" }, el("div", { class: "tl-label", title: "step " + w.step + " waits" }, el("b", { text: w.step || "run" }), " waits"),
      el("div", { class: "tl-track" }, waitBar(w, data, pos, width))));
  }
}

function waitBar(w, data, pos, width) {
  const what = w.event_type || "event";
  // A run that ended (cancelled, say) while a wait was open: the wait ended with it.
  const outcome = w.ended_at ? w.outcome : data.finished_at ? "run " + data.status : null;
  const label = outcome ? "⏸ waited for a person · " + dbg.duration(w.duration_ms) + " · " + outcome : "⏸ waiting for a person · " + dbg.duration(w.duration_ms);
  return el("div", { class: "tl-bar wait" + (w.ended_at ? " ended" : ""), style: "left:" + pos(w.started_at) + "%;width:" + width(w.duration_ms) + "%",
    "data-step": w.step, title: (outcome ? "waited " : "waiting ") + dbg.duration(w.duration_ms) + " for a " + what + (outcome ? " (" + outcome + ")" : " (still waiting)") }, label);
}

function diffLines(changes) {
  const box = el("div", { class: "diff" });
  if (!changes.length) { box.append(el("span", { class: "muted small", text: "no state change" })); return box; }
  for (const op of changes) {
    const value = op.value === undefined ? "" : " = " + compact(op.value);
    const mark = op.op === "add" ? "+ " : op.op === "remove" ? "− " : "~ ";
    box.append(el("div", { class: op.op, text: mark + op.path + value }));
  }
  return box;
}

function compact(value) {
  const text = JSON.stringify(value);
  return text && text.length > 400 ? text.slice(0, 399) + "…" : text;
}

function detailOf(a, data) {
  const cell = el("td", { colspan: 9 });
  const address = location.origin + location.pathname + "#step-" + a.seq;
  const copied = el("span", { class: "small muted copied" });
  cell.append(el("div", { class: "step-link" },
    el("a", { class: "step-anchor", href: "#step-" + a.seq, text: "Link to this step" }),
    el("input", { class: "step-url", readonly: true, value: address, "aria-label": "the address of this step", onclick: (e) => e.target.select() }),
    el("button", { class: "small copy-link", type: "button", onclick: () => copyLink(address, copied), text: "Copy link" }), copied));
  cell.append(el("h3", { text: "Input: " + (a.input_type || "event") }), el("pre", { text: dbg.json(a.input) }));
  if (a.output_type) cell.append(el("div", { class: "small", text: "Returned " + a.output_type }));
  if (a.error) {
    cell.append(el("h3", { text: a.outcome === "retrying" ? "Why it was retried" : "Error" }),
      el("div", { class: "attempt-error" }, el("b", { text: a.error.type + ": " }), a.error.message),
      a.outcome === "retrying" ? el("div", { class: "small muted", text: "retried after " + a.retry_delay + " s" }) : null,
      el("pre", { class: "traceback", text: a.error.traceback }));
  }
  if (a.llm.length) {
    cell.append(el("h3", { text: "LLM calls" }));
    for (const call of a.llm) {
      cell.append(el("div", { class: "llm-call" },
        el("div", {}, el("b", { text: call.model || "LLM" }), " · " + call.prompt_tokens + " tokens in, " + call.completion_tokens + " out · " + dbg.cost(call.cost) + " · " + dbg.duration(call.duration_ms)),
        call.input ? el("div", { class: "small muted", style: "margin-top:4px", text: "Asked: " + call.input }) : null,
        el("div", { class: "small", style: "margin-top:4px" }, el("b", { text: "Answered: " }), el("span", { class: "llm-answer", text: call.output || "(no text)" })),
        call.error ? el("div", { class: "small", style: "color:var(--fail)", text: call.error }) : null));
    }
  }
  cell.append(el("h3", { text: "State change" + (a.keys.length ? " (" + a.keys.join(", ") + ")" : "") }), diffLines(a.changes));
  if (a.state_after !== null) {
    cell.append(el("details", {}, el("summary", { text: "State after this step" }), el("pre", { text: dbg.json(a.state_after) })));
  }
  if (a.outcome === "completed" && data.served && a.output_type !== "StopEvent" && !dbg.readOnly) {
    cell.append(el("div", { style: "margin-top:8px" }, el("button", { class: "fork", onclick: () => openFork(a), text: "Fork from here…" })));
  }
  return el("tr", { class: "detail", "data-detail": attemptKey(a) }, cell);
}

async function copyLink(address, note) {
  try { await navigator.clipboard.writeText(address); note.textContent = "copied"; }
  catch (error) { note.textContent = "select the address and copy it (the browser refused: " + error.message + ")"; }
}

// /runs/{id}#step-{n}: the step of work item n, opened (its last attempt) and shown.
function linkedSeq() {
  const found = /^#step-(\d+)$/.exec(location.hash);
  return found ? Number(found[1]) : null;
}

function showLinked(data) {
  const seq = linkedSeq();
  if (seq === null || !data) return;
  const attempt = data.attempts.filter((a) => a.seq === seq).pop();
  if (!attempt) { dbg.notice("This run has no step #" + seq + " (yet)."); return; }
  ui.linked = attemptKey(attempt);
  ui.open.add(ui.linked);
  renderSteps(data);
  const row = document.querySelector('#steps tr[data-key="' + ui.linked + '"]');
  if (row) row.scrollIntoView({ block: "center" });
}

function renderSteps(data) {
  const body = dbg.clear(document.querySelector("#steps tbody"));
  if (!data.attempts.length) body.append(el("tr", {}, el("td", { colspan: 9, class: "empty", text: "No step has started yet." })));
  for (const a of data.attempts) {
    const key = attemptKey(a);
    const row = el("tr", { class: "clickable step-row" + (ui.linked === key ? " linked" : ""), "data-key": key, "data-step": a.step, "data-seq": a.seq, onclick: () => toggle(key) },
      el("td", { class: "mono", text: a.seq }),
      el("td", {}, el("b", { text: a.step }), a.slowest ? el("span", { class: "badge slowest", style: "margin-left:6px", text: "slowest" }) : null),
      el("td", { text: a.attempt }),
      el("td", {}, dbg.badge(a.outcome)),
      el("td", { class: "small", text: dbg.clock(a.started_at) }),
      el("td", { class: "num", text: dbg.duration(a.duration_ms) }),
      el("td", { class: "num", text: dbg.tokens(a.tokens) }),
      el("td", { class: "num", text: dbg.cost(a.cost) }),
      el("td", { class: "small mono", text: a.keys.join(", ") || "–" }),
    );
    body.append(row);
    if (ui.open.has(key)) body.append(detailOf(a, data));
  }
}

function toggle(key) {
  if (ui.open.has(key)) ui.open.delete(key); else ui.open.add(key);
  renderSteps(ui.data);
}

function openAttempt(a) {
  const key = attemptKey(a);
  ui.open.add(key);
  renderSteps(ui.data);
  const row = document.querySelector('#steps tr[data-key="' + key + '"]');
  if (row) row.scrollIntoView({ block: "center", behavior: "smooth" });
}

function renderEvents(data) {
  const showInternal = document.getElementById("internal").checked;
  const box = dbg.clear(document.getElementById("events"));
  const shown = data.events.filter((e) => showInternal || !e.internal);
  if (!shown.length) box.append(el("div", { class: "empty", text: data.events.length ? "Only internal events so far: tick 'show internal events'." : "No event yet." }));
  for (const e of shown) {
    box.append(el("div", { class: "ev" + (e.internal ? " internal" : ""), "data-type": e.type },
      el("span", { class: "mono", text: "#" + e.sequence }), el("span", { text: dbg.clock(e.at) }),
      el("b", { text: e.type }), el("code", { text: compact(e.value) })));
  }
}

function render(data) {
  ui.data = data;
  renderHeader(data);
  renderQuestion(data);
  renderOutcome(data);
  renderGraph(data);
  renderTimeline(data);
  renderSteps(data);
  renderEvents(data);
  document.getElementById("input").textContent = dbg.json(data.input);
  document.getElementById("state").textContent = dbg.json(data.state);
}

function update(data) {
  const first = ui.data === null;
  if (data.version !== ui.version) {
    ui.version = data.version;
    render(data);
  } else {
    ui.data = data;
    renderHeader(data);
  }
  if (first) showLinked(data);
}

// The run's duration grows while it goes on: counted up here, without a request.
function tick() {
  const data = ui.data;
  if (!data || data.finished_at) return;
  const duration = document.querySelector("#meta-duration b");
  if (duration) duration.textContent = dbg.duration(dbg.since(data.started_at));
}

async function cancel() {
  if (!confirm("Cancel this run?")) return;
  try { await dbg.api("/handlers/" + encodeURIComponent(handlerId) + "/cancel", { method: "POST" }); }
  catch (error) { dbg.notice("Could not cancel: " + error.message); }
}

async function rerun() {
  try {
    const run = await dbg.api("/api/runs/" + encodeURIComponent(handlerId) + "/rerun", { method: "POST" });
    location.href = "/runs/" + encodeURIComponent(run.handler_id);
  } catch (error) { dbg.notice("Could not re-run: " + error.message); }
}

let forkFrom = null;
function openFork(a) {
  forkFrom = a;
  document.getElementById("fork-title").textContent = "Fork after " + a.step + " (work item #" + a.seq + ")";
  document.getElementById("fork-state").value = dbg.json(a.state_after);
  document.getElementById("fork-dialog").showModal();
}

document.getElementById("fork-form").addEventListener("submit", async (event) => {
  const choice = event.submitter ? event.submitter.value : "fork";
  if (choice !== "fork" || !forkFrom) return;
  event.preventDefault();
  let state;
  try { state = JSON.parse(document.getElementById("fork-state").value); }
  catch (error) { dbg.notice("The state is not valid JSON: " + error.message); return; }
  const original = JSON.stringify(forkFrom.state_after);
  const body = { seq: forkFrom.seq };
  if (JSON.stringify(state) !== original) body.state = state;
  try {
    const run = await dbg.api("/api/runs/" + encodeURIComponent(handlerId) + "/fork", { method: "POST", body: JSON.stringify(body) });
    location.href = "/runs/" + encodeURIComponent(run.handler_id);
  } catch (error) {
    document.getElementById("fork-dialog").close();
    dbg.notice("Could not fork: " + error.message);
  }
});

document.getElementById("answer-form").addEventListener("submit", sendAnswer);
document.getElementById("internal").addEventListener("change", () => ui.data && renderEvents(ui.data));
window.addEventListener("hashchange", () => showLinked(ui.data));
dbg.follow(update).open("/api/live/runs/" + encodeURIComponent(handlerId));
dbg.every(tick, 1000);
