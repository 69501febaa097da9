// The login page: the token goes to POST /login in a JSON body (never in a URL); the server sets a session cookie.
"use strict";

// Where to go once logged in: a path on this server only (never another site).
function nextPath() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
}

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  try {
    await dbg.api("/login", { method: "POST", body: JSON.stringify({ token: input.value }) });
    location.replace(nextPath());
  } catch (error) {
    dbg.notice(error.status === 401 ? "Wrong token." : "Could not log in: " + error.message);
    input.select();
  }
});

// Arrived here from a link on another site (the cookie is SameSite=Strict): already logged in, go on.
dbg.ready.then((session) => { if (session.role) location.replace(nextPath()); });
