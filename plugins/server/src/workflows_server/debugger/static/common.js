// Helpers shared by the debugger's pages: requests to the server, formatting, building elements.
"use strict";

const dbg = {};

// Every request goes to the server that served the page (no other origin, ever).
dbg.api = async function (path, options) {
  const response = await fetch(path, Object.assign({ headers: { "Content-Type": "application/json" } }, options || {}));
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
  if (!response.ok) {
    const error = new Error((data && data.detail) || response.status + " " + response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
};

// What this browser may do: {auth, role} from the server. Read-only viewers ("read") see no actions.
dbg.readOnly = false;
dbg.ready = fetch("/api/session", { headers: { "Accept": "application/json" } })
  .then((response) => response.ok ? response.json() : { auth: false, role: "full" })
  .catch(() => ({ auth: false, role: "full" }))
  .then((session) => {
    dbg.readOnly = session.role === "read";
    document.documentElement.classList.toggle("read-only", dbg.readOnly);
    const header = document.querySelector("header.top");
    if (session.auth && session.role && header) {
      header.append(dbg.el("span", { class: "small", id: "role", text: session.role === "read" ? "read-only" : "" }),
        dbg.el("button", { id: "logout", class: "small", onclick: dbg.logout, text: "Log out" }));
    }
    return session;
  });

dbg.logout = async function () {
  try { await dbg.api("/logout", { method: "POST" }); } finally { location.href = "/login"; }
};

// el("td", {class: "num", onclick: fn}, child, "text", ...)
dbg.el = function (tag, attrs) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else if (key === "html") node.innerHTML = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of Array.prototype.slice.call(arguments, 2)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
};

dbg.duration = function (ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1) return (ms * 1000).toFixed(0) + " µs";
  if (ms < 1000) return ms.toFixed(ms < 10 ? 1 : 0) + " ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min " + Math.round(s % 60) + " s";
  return Math.floor(m / 60) + " h " + (m % 60) + " min";
};

dbg.time = function (iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
};

dbg.clock = function (iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" }) +
    "." + String(d.getMilliseconds()).padStart(3, "0");
};

dbg.tokens = function (n) { return n ? n.toLocaleString() : "–"; };
dbg.cost = function (c) { return c === null || c === undefined ? "–" : "$" + (c < 0.01 ? c.toFixed(5) : c.toFixed(3)); };
dbg.short = function (id) { return id ? id.slice(0, 8) : ""; };

dbg.badge = function (status) { return dbg.el("span", { class: "badge " + status, text: status }); };

dbg.json = function (value) {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  return JSON.stringify(value, null, 2);
};

dbg.clear = function (node) { while (node.firstChild) node.removeChild(node.firstChild); return node; };

dbg.notice = function (message) {
  const box = document.getElementById("notice");
  if (!box) return;
  box.textContent = message || "";
  box.classList.toggle("show", Boolean(message));
};

// Live pages poll the store through the server: every replica's runs appear, and a
// page never depends on the process that ran them.
dbg.poll = function (fn, everyMs) {
  let stopped = false;
  const live = document.getElementById("live");
  async function tick() {
    if (stopped) return;
    await dbg.ready;  // the first drawing knows whether actions are allowed
    try {
      const again = await fn();
      if (live) { live.classList.remove("off"); live.lastChild.textContent = "live · " + new Date().toLocaleTimeString(); }
      if (again === false) { stopped = true; if (live) live.lastChild.textContent = "finished · not polling"; return; }
    } catch (error) {
      if (live) { live.classList.add("off"); live.lastChild.textContent = "server unreachable: " + error.message; }
    }
    setTimeout(tick, everyMs);
  }
  tick();
  return function () { stopped = true; };
};
