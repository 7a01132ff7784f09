// The admins' dashboard: plain JavaScript over the /v1/admin API, no build
// step, no outside network. The token lives in this tab's sessionStorage.
"use strict";

const REFRESH_MS = 3000;
const TOKEN_KEY = "usher_admin_token";
let timer = null;

const $ = (sel) => document.querySelector(sel);

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: Object.assign({ Authorization: "Bearer " + token() },
                           body ? { "Content-Type": "application/json" } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error((data.error && data.error.message) || res.statusText);
    err.status = res.status;
    throw err;
  }
  return data;
}

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (cls) td.className = cls;
  return td;
}

function button(row, label, action, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.dataset.action = action;
  b.addEventListener("click", onClick);
  row.insertCell().appendChild(b);
  return b;
}

// Completed (blue) and failed (red) per minute over the last hour.
function sparkline(series) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 60 24");
  const now = Math.floor(Date.now() / 60000);
  const done = new Array(60).fill(0), failed = new Array(60).fill(0);
  for (const [epoch, d, f] of series || []) {
    const i = 59 - (now - Math.floor(epoch / 60));
    if (i >= 0 && i < 60) { done[i] = d; failed[i] = f; }
  }
  const max = Math.max(1, ...done, ...failed);
  for (const [values, cls] of [[done, "done"], [failed, "failed"]]) {
    const path = document.createElementNS(ns, "path");
    path.setAttribute("class", cls);
    path.setAttribute("d", values.map((v, i) => (i ? "L" : "M") + i + " " +
                                       (23 - (v / max) * 22).toFixed(1)).join(" "));
    svg.appendChild(path);
  }
  return svg;
}

function renderQueues(queues) {
  const body = $("#queues tbody");
  body.replaceChildren();
  for (const q of queues) {
    const row = body.insertRow();
    row.dataset.queue = q.name;
    row.classList.toggle("paused", q.paused);
    cell(row, q.name);
    cell(row, q.pool);
    for (const k of ["available", "scheduled", "running", "dead"]) cell(row, q[k], "num");
    cell(row, q.oldest_available_age_s === null ? "" : q.oldest_available_age_s.toFixed(1), "num");
    cell(row, q.completed_last_minute, "num");
    cell(row, q.failed_last_minute, "num");
    cell(row, (100 * (q.error_rate || 0)).toFixed(1) + "%", "num");
    row.insertCell().appendChild(sparkline(q.series));
    const verb = q.paused ? "resume" : "pause";
    button(row, q.paused ? "Resume" : "Pause", verb, () =>
      act("POST", "/v1/admin/queues/" + encodeURIComponent(q.name) + "/" + verb));
  }
}

function renderDead(jobs) {
  const body = $("#dead tbody");
  body.replaceChildren();
  $("#dead-empty").hidden = jobs.length > 0;
  for (const j of jobs) {
    const row = body.insertRow();
    row.dataset.job = j.id;
    cell(row, j.id, "num");
    cell(row, j.queue);
    cell(row, j.kind);
    cell(row, j.attempt + "/" + j.max_attempts, "num");
    cell(row, j.last_error, "error");
    cell(row, j.finished_at);
    button(row, "Retry", "retry", () => act("POST", "/v1/admin/jobs/" + j.id + "/retry"));
    button(row, "Discard", "discard", () => act("POST", "/v1/admin/jobs/" + j.id + "/discard"));
  }
}

function renderPools(pools) {
  const body = $("#pools tbody");
  body.replaceChildren();
  for (const p of pools) {
    const row = body.insertRow();
    row.classList.toggle("stale", p.stale);
    cell(row, p.pool);
    cell(row, p.host);
    cell(row, p.pid, "num");
    cell(row, p.current, "num");
    cell(row, p.desired, "num");
    cell(row, p.min + "–" + p.max, "num");
    cell(row, p.busy, "num");
    cell(row, p.depth, "num");
    cell(row, p.leader ? "yes" : "");
    cell(row, p.stale ? p.heartbeat_at + " (stale)" : p.heartbeat_at);
  }
}

function showError(err) {
  $("#error").hidden = !err;
  $("#error").textContent = err ? err.message : "";
  if (err && err.status === 401) logout();
}

async function refresh() {
  try {
    const [queues, dead, pools] = await Promise.all([
      api("GET", "/v1/admin/queues"),
      api("GET", "/v1/admin/jobs?state=dead&limit=50"),
      api("GET", "/v1/admin/pools"),
    ]);
    renderQueues(queues.queues);
    renderDead(dead.jobs);
    renderPools(pools.pools);
    $("#status").textContent = "Updated " + new Date().toLocaleTimeString();
    showError(null);
  } catch (err) {
    showError(err);
  }
}

async function act(method, path) {
  try {
    await api(method, path);
    await refresh();
  } catch (err) {
    showError(err);
  }
}

function start() {
  $("#login").hidden = true;
  $("#board").hidden = false;
  $("#logout").hidden = false;
  refresh();
  timer = setInterval(refresh, REFRESH_MS);
}

function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(timer);
  $("#board").hidden = true;
  $("#logout").hidden = true;
  $("#login").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("#token").value.trim());
    $("#token").value = "";
    start();
  });
  $("#logout").addEventListener("click", logout);
  if (token()) start(); else $("#login").hidden = false;
});
