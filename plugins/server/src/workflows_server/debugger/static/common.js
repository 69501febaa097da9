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
    dbg.exported = Boolean(session.exported);
    document.documentElement.classList.toggle("read-only", dbg.readOnly);
    const header = document.querySelector("header.top");
    if (session.exported && header) header.append(dbg.el("span", { class: "small", id: "role", text: "exported run · read-only" }));
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

// Live pages follow the server with Server-Sent Events (debugger/push.py): one stream per
// page, which sends the page's whole data each time it changes (every replica's runs, since
// it reads the store), and nothing at rest but the server's heartbeat comments. The browser
// reconnects a dropped stream itself, with Last-Event-ID; a stream the server refused (it
// restarted behind a proxy, say) is opened again here after a pause, with ?last_event_id=.
dbg.follow = function (render) {
  const live = document.getElementById("live");
  const stream = { source: null, url: null, lastId: null, again: null };
  function show(text, off) {
    if (!live) return;
    live.classList.toggle("off", Boolean(off));
    live.lastChild.textContent = text;
  }
  function connect() {
    if (stream.source) stream.source.close();
    clearTimeout(stream.again);
    const url = stream.url + (stream.lastId ? (stream.url.includes("?") ? "&" : "?") + "last_event_id=" + encodeURIComponent(stream.lastId) : "");
    const source = stream.source = new EventSource(url);
    source.onopen = () => show("live");
    source.onmessage = (message) => {
      stream.lastId = message.lastEventId;
      try { render(JSON.parse(message.data)); } catch (error) { dbg.notice("Could not draw the update: " + error.message); }
      show("live · updated " + new Date().toLocaleTimeString());
    };
    source.addEventListener("gone", (message) => {
      source.close();
      dbg.notice(JSON.parse(message.data).detail);
      show("not following", true);
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        show("server unreachable: retrying", true);
        stream.again = setTimeout(connect, 2000);
      } else {
        show("reconnecting…", true);
      }
    };
  }
  // Follow ``url`` (a new address: what the page shows changed, e.g. its filters).
  stream.open = async function (url) {
    await dbg.ready;  // the first drawing knows whether actions are allowed
    if (url !== stream.url) stream.lastId = null;
    stream.url = url;
    connect();
  };
  return stream;
};

// Durations of runs that go on grow with the clock: the pages count them up themselves.
dbg.every = function (fn, everyMs) { return setInterval(fn, everyMs); };
dbg.since = function (iso) { return Math.max(0, Date.now() - new Date(iso).getTime()); };
