// The home page: the store's runs, filtered and searched by the server, newest first, live.
"use strict";

const el = dbg.el;
const state = { cursors: [null], page: 0, seen: new Set(), first: true, signature: "", data: null, selected: new Set(), allMatching: false };
const fields = ["status", "workflow", "session", "since", "until", "q"];
const pageSize = Math.max(1, Math.min(500, Number(new URLSearchParams(location.search).get("limit")) || 25));

function readFilters() {
  const params = new URLSearchParams(location.search);
  for (const name of fields) {
    const input = document.getElementById("f-" + name);
    const value = params.get(name) || "";
    if (name === "since" || name === "until") input.dataset.iso = value;
    // A filter in the address is applied before the server has listed the choices.
    if (input.tagName === "SELECT" && value && !Array.from(input.options).some((o) => o.value === value)) input.append(el("option", { value: value, text: value }));
    input.value = (name === "since" || name === "until") && value ? toLocalInput(value) : value;
  }
}

function toLocalInput(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
}

function filterParams() {
  const params = new URLSearchParams();
  if (pageSize !== 25) params.set("limit", String(pageSize));
  for (const name of fields) {
    const input = document.getElementById("f-" + name);
    let value = input.value.trim();
    if ((name === "since" || name === "until") && value) value = new Date(value).toISOString();
    // The server looks text up by its trigrams: shorter texts are not sent (see shortSearch).
    if (name === "q" && value.length < minSearch) continue;
    if (value) params.set(name, value);
  }
  return params;
}

const minSearch = 3;

function shortSearch() {
  const value = document.getElementById("f-q").value.trim();
  return value.length > 0 && value.length < minSearch;
}

function filtersChanged() {
  const params = filterParams();
  history.replaceState(null, "", params.toString() ? "?" + params : location.pathname);
  state.cursors = [null];
  state.page = 0;
  clearSelection();
  // Said at once: a search too short to send leaves the stream (and so the list) as it was.
  searchNotice();
  follow();
}

function searchNotice() {
  dbg.notice(shortSearch() ? "Search needs at least " + minSearch + " characters: the runs below are not searched yet." : "");
}

function fillSelect(select, values) {
  const chosen = select.value || new URLSearchParams(location.search).get(select.name) || "";
  const known = Array.from(select.options).map((o) => o.value);
  for (const value of values) if (!known.includes(value)) select.append(el("option", { value: value, text: value }));
  select.value = chosen;
}

function row(run) {
  const isNew = !state.first && !state.seen.has(run.handler_id);
  state.seen.add(run.handler_id);
  const link = "/runs/" + encodeURIComponent(run.handler_id);
  const input = run.input_preview || "";
  const box = el("input", { type: "checkbox", class: "pick", "aria-label": "select run " + run.handler_id, checked: state.allMatching || state.selected.has(run.handler_id), onchange: (e) => pick(run.handler_id, e.target.checked) });
  const tr = el("tr", { class: "clickable" + (isNew ? " new" : ""), "data-id": run.handler_id, "data-status": run.status, "data-started": run.started_at, onclick: (e) => { if (e.target.tagName !== "A" && e.target.tagName !== "INPUT" && !e.target.classList.contains("pick-cell")) location.href = link; } },
    el("td", { class: "action pick-cell" }, box),
    el("td", {}, el("a", { href: link, class: "mono", text: dbg.short(run.handler_id) }),
      run.relation ? el("span", { class: "badge soft", style: "margin-left:6px", text: run.relation }) : null),
    el("td", { text: run.workflow_name }),
    el("td", {}, dbg.badge(run.status)),
    el("td", { class: "when", text: dbg.time(run.started_at), title: run.started_at }),
    el("td", { class: "num", text: dbg.duration(run.duration_ms) }),
    el("td", { class: "num", text: run.steps }),
    el("td", { class: "num", text: dbg.tokens(run.tokens) }),
    el("td", { class: "num", text: dbg.cost(run.cost) }),
    el("td", {}, run.session_id ? el("a", { class: "mono", href: "/sessions/" + encodeURIComponent(run.session_id), text: dbg.short(run.session_id) }) : "–"),
    el("td", { class: "small muted", text: input }),
  );
  return tr;
}

function listUrl() {
  const params = filterParams();
  const cursor = state.cursors[state.page];
  if (cursor) params.set("cursor", cursor);
  params.set("limit", String(pageSize));
  return "/api/live/runs?" + params.toString();
}

function follow() { stream.open(listUrl()); }

function render(data) {
  state.data = data;
  searchNotice();
  fillSelect(document.getElementById("f-status"), data.statuses);
  fillSelect(document.getElementById("f-workflow"), data.workflows);
  const signature = JSON.stringify(data.runs.map((r) => [r.handler_id, r.status, r.steps, r.tokens, r.updated_at])) + data.total + data.total_capped;
  // Counting stops at 10 000 on the server (total_capped): "10 000+".
  const total = data.total.toLocaleString("en-US").replace(/,/g, " ") + (data.total_capped ? "+" : "");
  document.getElementById("count").textContent = total + (data.total === 1 && !data.total_capped ? " run" : " runs");
  const first = state.page * pageSize + (data.runs.length ? 1 : 0);
  document.getElementById("page-info").textContent = data.runs.length ? "runs " + first + "–" + (state.page * pageSize + data.runs.length) + " of " + total : "";
  document.getElementById("newer").disabled = state.page === 0;
  document.getElementById("older").disabled = !data.next_cursor;
  state.cursors[state.page + 1] = data.next_cursor;
  const body = document.querySelector("#runs tbody");
  if (signature !== state.signature) {
    state.signature = signature;
    dbg.clear(body);
    if (!data.runs.length) {
      body.append(el("tr", {}, el("td", { colspan: 11, class: "empty", text: fields.some((n) => document.getElementById("f-" + n).value) ? "No run matches these filters." : "No runs yet: start one below." })));
    }
    for (const run of data.runs) body.append(row(run));
  }
  state.first = false;
  drawSelection();
}

// Durations of running runs grow: counted up here, without a request.
function tick() {
  for (const tr of document.querySelectorAll('#runs tbody tr[data-status="running"], #runs tbody tr[data-status="waiting"]')) {
    tr.children[5].textContent = dbg.duration(dbg.since(tr.dataset.started));
  }
}

// ------------------------------------------------------------------ acting on many runs
function pick(id, on) {
  if (state.allMatching) { state.allMatching = false; for (const run of state.data.runs) state.selected.add(run.handler_id); }
  if (on) state.selected.add(id); else state.selected.delete(id);
  drawSelection();
}

function clearSelection() { state.selected.clear(); state.allMatching = false; drawSelection(); }

function drawSelection() {
  const data = state.data;
  const bar = document.getElementById("bulk");
  const pageIds = data ? data.runs.map((r) => r.handler_id) : [];
  const count = state.allMatching ? (data ? data.total : 0) : state.selected.size;
  for (const box of document.querySelectorAll("#runs tbody input.pick")) {
    box.checked = state.allMatching || state.selected.has(box.closest("tr").dataset.id);
  }
  const pageBox = document.getElementById("pick-page");
  pageBox.checked = pageIds.length > 0 && (state.allMatching || pageIds.every((id) => state.selected.has(id)));
  bar.hidden = count === 0;
  document.getElementById("bulk-count").textContent = state.allMatching
    ? "All " + count + " runs matching the filter are selected." : count + (count === 1 ? " run" : " runs") + " selected.";
  const all = document.getElementById("pick-all");
  all.hidden = state.allMatching || !data || !pageBox.checked || data.total <= pageIds.length;
  all.textContent = data ? "Select all " + data.total + " matching runs" : "";
}

function listFilter() {
  const filter = {};
  for (const [key, value] of filterParams()) if (key !== "limit") filter[key] = value;
  return filter;
}

const verbs = { cancel: ["Cancel", "cancelled"], rerun: ["Re-run", "re-run"] };

async function bulk(action) {
  const target = state.allMatching ? { filter: listFilter() } : { ids: Array.from(state.selected) };
  let count = state.selected.size;
  try {
    if (state.allMatching) {
      count = (await dbg.api("/api/runs/actions", { method: "POST", body: JSON.stringify(Object.assign({ action: action, dry_run: true }, target)) })).matched;
    }
  } catch (error) { dbg.notice("Could not count the runs: " + error.message); return; }
  const what = action === "rerun" ? " (only the failed ones are re-run, with the same input)" : " (finished runs are skipped)";
  if (!confirm(verbs[action][0] + " " + count + (count === 1 ? " run" : " runs") + what + "?")) return;
  const box = dbg.clear(document.getElementById("bulk-result"));
  box.hidden = false;
  box.append(el("div", { class: "muted small", text: verbs[action][0] + " of " + count + " runs…" }));
  let result;
  try {
    result = await dbg.api("/api/runs/actions", { method: "POST", body: JSON.stringify(Object.assign({ action: action }, target)) });
  } catch (error) { dbg.clear(box); box.append(el("div", { text: "Nothing was done: " + error.message })); return; }
  clearSelection();
  const counts = result.counts || {};
  dbg.clear(box).append(
    el("div", { id: "bulk-summary" }, el("b", { text: verbs[action][0] + ": " }),
      (counts.done || 0) + " " + verbs[action][1] + ", " + (counts.skipped || 0) + " skipped, " + (counts.failed || 0) + " failed, of " + result.matched + "."),
    el("button", { class: "small", type: "button", onclick: () => { box.hidden = true; }, text: "Dismiss" }));
  const list = el("table", { id: "bulk-outcomes", class: "small" });
  for (const item of result.results) {
    list.append(el("tr", { "data-id": item.handler_id, "data-outcome": item.outcome },
      el("td", {}, el("a", { class: "mono", href: "/runs/" + encodeURIComponent(item.handler_id), text: dbg.short(item.handler_id) })),
      el("td", {}, el("span", { class: "badge outcome-" + item.outcome, text: item.outcome })),
      el("td", { text: item.detail || "" }),
      el("td", {}, item.new_handler_id ? el("a", { class: "mono", href: "/runs/" + encodeURIComponent(item.new_handler_id), text: "new run " + dbg.short(item.new_handler_id) }) : "")));
  }
  box.append(list);
}

async function setupStart() {
  await dbg.ready;
  if (dbg.readOnly) return;  // read-only viewers start nothing
  const select = document.getElementById("start-workflow");
  const data = await dbg.api("/workflows");
  for (const name of data.workflows) select.append(el("option", { value: name, text: name }));
  select.addEventListener("change", startFields);
  await startFields();
  document.getElementById("start-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const start = {};
    try {
      for (const input of document.querySelectorAll("#start-fields [data-field]")) {
        const raw = input.value.trim();
        if (!raw) continue;
        const kind = input.dataset.kind;
        start[input.dataset.field] = kind === "string" ? raw : JSON.parse(raw);
      }
    } catch (error) { dbg.notice("A field is not valid JSON: " + error.message); return; }
    try {
      const run = await dbg.api("/workflows/" + encodeURIComponent(select.value) + "/run-nowait", { method: "POST", body: JSON.stringify({ start_event: start }) });
      location.href = "/runs/" + encodeURIComponent(run.handler_id);
    } catch (error) { dbg.notice("Could not start the run: " + error.message); }
  });
}

async function startFields() {
  const name = document.getElementById("start-workflow").value;
  const box = dbg.clear(document.getElementById("start-fields"));
  if (!name) return;
  const schema = await dbg.api("/workflows/" + encodeURIComponent(name) + "/schema");
  const properties = (schema.start && schema.start.properties) || {};
  const names = Object.keys(properties);
  if (!names.length) names.push("question");  // a bare StartEvent takes any field
  for (const field of names) {
    const prop = properties[field] || { type: "string" };
    const kind = prop.type === "string" || !prop.type ? "string" : "json";
    box.append(el("div", { class: "form-row" },
      el("label", { for: "start-" + field, text: field + (kind === "json" ? " (JSON)" : "") }),
      el("input", { id: "start-" + field, "data-field": field, "data-kind": kind, size: 60, placeholder: prop.description || "" })));
  }
}

readFilters();
document.getElementById("filters").addEventListener("change", filtersChanged);
let typing = null;
document.getElementById("f-q").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(filtersChanged, 300); });
document.getElementById("f-session").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(filtersChanged, 300); });
document.getElementById("filters").addEventListener("submit", (e) => { e.preventDefault(); filtersChanged(); });
document.getElementById("f-clear").addEventListener("click", () => {
  for (const name of fields) document.getElementById("f-" + name).value = "";
  filtersChanged();
});
document.getElementById("newer").addEventListener("click", () => { state.page = Math.max(0, state.page - 1); state.signature = ""; follow(); });
document.getElementById("older").addEventListener("click", () => { state.page += 1; state.signature = ""; follow(); });
document.getElementById("pick-page").addEventListener("change", (e) => {
  state.allMatching = false;
  for (const run of (state.data ? state.data.runs : [])) { if (e.target.checked) state.selected.add(run.handler_id); else state.selected.delete(run.handler_id); }
  drawSelection();
});
document.getElementById("pick-all").addEventListener("click", () => { state.allMatching = true; drawSelection(); });
document.getElementById("pick-none").addEventListener("click", clearSelection);
document.getElementById("bulk-cancel").addEventListener("click", () => bulk("cancel"));
document.getElementById("bulk-rerun").addEventListener("click", () => bulk("rerun"));
const stream = dbg.follow(render);
follow();
dbg.every(tick, 1000);
setupStart().catch((error) => dbg.notice("Could not list the workflows: " + error.message));
