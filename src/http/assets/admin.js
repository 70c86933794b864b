// The admin page: every call goes to /admin/v1 with the admin token as a bearer header.
// The token lives in sessionStorage (this tab only), never in a cookie, so no other site
// can make the browser use it. Everything is written with textContent: no markup from data.
"use strict";

const KEY = "scim-bridge-admin-token";
const $ = (id) => document.getElementById(id);
let auditCursor = null;

function token() { return sessionStorage.getItem(KEY); }

async function api(method, path) {
  const res = await fetch("/admin/v1" + path, {
    method,
    headers: { "Authorization": "Bearer " + token(), "Accept": "application/json" },
    credentials: "omit",
    cache: "no-store",
  });
  if (res.status === 401) { signOut("The token was refused; sign in again."); throw new Error("refused"); }
  const text = await res.text();
  const body = text ? JSON.parse(text) : null;
  if (!res.ok) { throw new Error((body && body.detail) || ("HTTP " + res.status)); }
  return body;
}

function cell(row, value, cls) {
  const td = document.createElement("td");
  td.textContent = value === null || value === undefined ? "" : String(value);
  if (cls) { td.className = cls; }
  row.appendChild(td);
  return td;
}

function fill(tableId, items, render) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren();
  for (const item of items) {
    const tr = document.createElement("tr");
    render(tr, item);
    body.appendChild(tr);
  }
}

async function loadConnectors() {
  const { connectors } = await api("GET", "/connectors");
  fill("connectors", connectors, (tr, c) => {
    tr.dataset.connector = c.name;
    cell(tr, c.name); cell(tr, c.kind); cell(tr, c.queueDepth);
    cell(tr, c.dead, c.dead > 0 ? "state-dead" : ""); cell(tr, c.blocked || 0);
    cell(tr, c.held || 0);
    cell(tr, c.lastSuccess || "never"); cell(tr, c.lastError || "");
  });
}

async function loadRetryingJobs() {
  const { jobs } = await api("GET", "/jobs?state=pending&limit=200");
  const retrying = jobs.filter((j) => j.retryingSince);
  $("no-retrying-jobs").hidden = retrying.length > 0;
  fill("retrying-jobs", retrying, (tr, j) => {
    tr.dataset.job = j.id;
    cell(tr, j.id); cell(tr, j.connector); cell(tr, j.event); cell(tr, j.resourceId);
    cell(tr, j.attempts); cell(tr, j.retryingSince); cell(tr, j.nextAttemptAt || "");
    cell(tr, j.lastError || "");
  });
}

async function loadDeadJobs() {
  const { jobs } = await api("GET", "/jobs?state=dead&limit=200");
  $("no-dead-jobs").hidden = jobs.length > 0;
  fill("dead-jobs", jobs, (tr, j) => {
    tr.dataset.job = j.id;
    cell(tr, j.id); cell(tr, j.connector); cell(tr, j.event); cell(tr, j.resourceId);
    cell(tr, j.attempts); cell(tr, j.lastError);
    const td = cell(tr, "");
    const b = document.createElement("button");
    b.textContent = "Retry";
    b.className = "retry";
    b.addEventListener("click", () => retry(j.id, b));
    td.appendChild(b);
    const d = document.createElement("button");
    d.textContent = "Discard";
    d.className = "discard";
    d.title = "Drop this change for good: the target never gets it, and the changes behind it go on";
    d.addEventListener("click", () => discard(j.id, d));
    td.appendChild(d);
  });
}

async function discard(id, button) {
  if (!confirm("Discard job " + id + "? The target never gets this change.")) return;
  button.disabled = true;
  try {
    await api("POST", "/jobs/" + encodeURIComponent(id) + "/discard");
    say("Job " + id + " is discarded.");
    await refresh();
  } catch (e) { say("Discard failed: " + e.message); button.disabled = false; }
}

async function retry(id, button) {
  button.disabled = true;
  try {
    await api("POST", "/jobs/" + encodeURIComponent(id) + "/retry");
    say("Job " + id + " is back in the queue.");
    await refresh();
  } catch (e) { say("Retry failed: " + e.message); button.disabled = false; }
}

async function loadAudit(more) {
  const q = "/audit?count=50" + (more && auditCursor ? "&cursor=" + encodeURIComponent(auditCursor) : "");
  const page = await api("GET", q);
  auditCursor = page.next;
  $("audit-more").hidden = !page.next;
  const render = (tr, e) => {
    cell(tr, e.at); cell(tr, e.credential); cell(tr, e.client); cell(tr, e.method + " " + e.route);
    cell(tr, (e.resourceType || "") + " " + (e.resourceId || "")); cell(tr, (e.paths || []).join(", "));
    cell(tr, e.status);
  };
  if (more) {
    const body = $("audit").querySelector("tbody");
    for (const e of page.entries) { const tr = document.createElement("tr"); render(tr, e); body.appendChild(tr); }
  } else {
    fill("audit", page.entries, render);
  }
}

async function lookup(ev) {
  ev.preventDefault();
  $("lookup-error").textContent = "";
  $("lookup-result").hidden = true;
  const key = $("lookup-key").value.trim();
  const kind = $("lookup-kind").value;
  try {
    const s = await api("GET", "/" + kind + "/" + encodeURIComponent(key));
    $("lookup-title").textContent = (s.userName || s.displayName || s.id) + " (" + s.resourceType + " " + s.id + ")" + (s.deleted ? ", deleted" : "");
    fill("standing", s.connectors || [], (tr, t) => {
      tr.dataset.connector = t.connector;
      cell(tr, t.connector); cell(tr, t.kind); cell(tr, t.state, "state-" + t.state);
      cell(tr, t.targetId); cell(tr, t.principal); cell(tr, t.lastError); cell(tr, t.updated);
    });
    $("lookup-result").hidden = false;
  } catch (e) { $("lookup-error").textContent = e.message; }
}

function say(text) { $("status").textContent = text; }

async function refresh() {
  await Promise.all([loadConnectors(), loadRetryingJobs(), loadDeadJobs(), loadAudit(false)]);
}

function signOut(why) {
  sessionStorage.removeItem(KEY);
  $("app").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = why || "";
}

async function signIn(ev) {
  if (ev) { ev.preventDefault(); sessionStorage.setItem(KEY, $("token").value.trim()); $("token").value = ""; }
  if (!token()) { return; }
  try {
    await refresh();
    $("sign-in").hidden = true;
    $("app").hidden = false;
    $("sign-out").hidden = false;
  } catch (e) {
    if (e.message !== "refused") { $("sign-in-error").textContent = e.message; }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut(""));
  $("lookup-form").addEventListener("submit", lookup);
  $("audit-more").addEventListener("click", () => loadAudit(true));
  setInterval(() => { if (token() && !$("app").hidden) { refresh().catch(() => {}); } }, 3000);
  signIn();
});
