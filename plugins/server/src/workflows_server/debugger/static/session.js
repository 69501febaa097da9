// A session: the runs that shared a Context, oldest first, as one conversation.
"use strict";

const el = dbg.el;
const sessionId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
let signature = "";

function text(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  const keys = Object.keys(value);
  if (keys.length === 1 && typeof value[keys[0]] === "string") return value[keys[0]];
  return JSON.stringify(value, null, 2);
}

function render(data) {
  document.getElementById("session-id").textContent = sessionId;
  document.getElementById("count").textContent = data.total + (data.total === 1 ? " run" : " runs");
  const now = JSON.stringify(data.runs.map((r) => [r.handler_id, r.status, r.updated_at]));
  if (now === signature) return;
  signature = now;
  const box = dbg.clear(document.getElementById("conversation"));
  data.runs.forEach((run, index) => {
    const answer = run.status === "completed" ? text(run.result_value) : run.status === "failed" ? "failed: " + (run.error_text || "") : run.status + "…";
    box.append(el("div", { class: "turn", "data-id": run.handler_id },
      el("div", { class: "bubble user" }, el("span", { class: "who", text: "turn " + (index + 1) + " · input · " + dbg.time(run.started_at) }), text(run.input)),
      el("div", { class: "bubble agent" },
        el("span", { class: "who" }, run.workflow_name + " · ", dbg.badge(run.status), " · " + dbg.duration(run.duration_ms) + " · " + dbg.tokens(run.tokens) + " tokens · ",
          el("a", { href: "/runs/" + encodeURIComponent(run.handler_id), class: "mono", text: "run " + dbg.short(run.handler_id) })),
        answer)));
  });
}

dbg.follow(render).open("/api/live/sessions/" + encodeURIComponent(sessionId));
