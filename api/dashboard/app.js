// The admins' dashboard: plain JavaScript over the /v1/admin API, no build
// step, no outside network. The token lives in this tab's sessionStorage.
// Three views chosen by the address's hash: the overview (#/), a job list
// (#/jobs?filters, jobs.js) and one job (#/job/ID, job.js). The view on
// screen refreshes itself every few seconds, so counts move without a reload.
"use strict";

const REFRESH_MS = 3000;
const TOKEN_KEY = "usher_admin_token";
let timer = null;
let refreshing = false;

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
    err.field = data.error && data.error.field;
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

function link(text, href) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = String(text);
  return a;
}

function linkCell(row, text, href, cls) {
  const td = row.insertCell();
  if (cls) td.className = cls;
  td.appendChild(link(text, href));
  return td;
}

function button(row, label, action, onClick, name) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.dataset.action = action;
  if (name) b.setAttribute("aria-label", name);
  b.addEventListener("click", onClick);
  row.insertCell().appendChild(b);
  return b;
}

// Which control an element is, stable across re-renders: its row and its part.
function focusKey(el) {
  const row = el.closest("tr");
  const id = row ? row.dataset.queue || row.dataset.job || "" : "";
  return el.dataset.key || id + "|" + (el.dataset.action || el.dataset.count ||
                                       el.getAttribute("href") || el.tagName);
}

// Runs render (which rebuilds part of container) and gives the keyboard focus
// back to the same control, so that the live refresh never pulls it away.
function keepFocus(container, render) {
  const active = document.activeElement;
  const key = active && active !== document.body && container.contains(active)
    ? focusKey(active) : null;
  render();
  if (!key) return;
  for (const el of container.querySelectorAll("a, button")) {
    if (focusKey(el) === key) { el.focus(); return; }
  }
}

function jobsHref(filter) {
  return "#/jobs?" + new URLSearchParams(filter).toString();
}

function renderQueues(queues) {
  keepFocus($("#queues"), () => fillQueues(queues));
  fillQueueChoices(queues.map((q) => q.name));
}

function fillQueues(queues) {
  const body = $("#queues tbody");
  body.replaceChildren();
  for (const q of queues) {
    const row = body.insertRow();
    row.dataset.queue = q.name;
    row.classList.toggle("paused", q.paused);
    cell(row, q.name);
    cell(row, q.pool);
    for (const k of ["available", "scheduled", "running", "dead"]) {
      const state = k === "scheduled" ? "available" : k;
      linkCell(row, q[k], jobsHref({ queue: q.name, state }), "num").dataset.count = k;
    }
    cell(row, q.oldest_available_age_s === null ? "" : q.oldest_available_age_s.toFixed(1), "num");
    cell(row, q.completed_last_minute, "num");
    cell(row, q.failed_last_minute, "num");
    cell(row, (100 * (q.error_rate || 0)).toFixed(1) + "%", "num");
    row.insertCell().appendChild(sparkline(q.series));
    const verb = q.paused ? "resume" : "pause";
    button(row, q.paused ? "Resume" : "Pause", verb, () =>
      act("POST", "/v1/admin/queues/" + encodeURIComponent(q.name) + "/" + verb),
      (q.paused ? "Resume queue " : "Pause queue ") + q.name).dataset.key = q.name + "|toggle";
  }
}

function renderDead(jobs) {
  keepFocus($("#dead"), () => fillDead(jobs));
}

function fillDead(jobs) {
  const body = $("#dead tbody");
  body.replaceChildren();
  $("#dead-empty").hidden = jobs.length > 0;
  for (const j of jobs) {
    const row = body.insertRow();
    row.dataset.job = j.id;
    linkCell(row, j.id, "#/job/" + j.id, "num");
    cell(row, j.queue);
    cell(row, j.kind);
    cell(row, j.attempt + "/" + j.max_attempts, "num");
    cell(row, j.last_error, "error");
    cell(row, j.finished_at);
    button(row, "Retry", "retry", () => act("POST", "/v1/admin/jobs/" + j.id + "/retry"),
           "Retry job " + j.id);
    button(row, "Discard", "discard", () => act("POST", "/v1/admin/jobs/" + j.id + "/discard"),
           "Discard job " + j.id);
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

async function refreshOverview() {
  const [queues, dead, pools] = await Promise.all([
    api("GET", "/v1/admin/queues"),
    api("GET", "/v1/admin/jobs?state=dead&limit=50"),
    api("GET", "/v1/admin/pools"),
  ]);
  renderQueues(queues.queues);
  renderDead(dead.jobs);
  renderPools(pools.pools);
  renderCharts(queues.queues, pools.pools);
}

// The view the hash names: [name, argument].
function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const job = hash.match(/^\/job\/(\d+)$/);
  if (job) return ["job", job[1]];
  if (hash === "/jobs" || hash.startsWith("/jobs?")) {
    return ["jobs", new URLSearchParams(hash.slice(6))];
  }
  return ["overview", null];
}

async function refresh() {
  if (refreshing || !token()) return;
  refreshing = true;
  const hash = location.hash;
  const [view, arg] = route();
  try {
    if (view === "job") await refreshJob(arg);
    else if (view === "jobs") await refreshJobs(arg);
    else await refreshOverview();
    $("#status").textContent = "Updated " + new Date().toLocaleTimeString();
    showError(null);
  } catch (err) {
    showError(err);
  } finally {
    refreshing = false;
  }
  if (location.hash !== hash) refresh(); // the view changed meanwhile
}

function showView() {
  const [view, arg] = route();
  $("#board").hidden = view !== "overview";
  $("#jobs-view").hidden = view !== "jobs";
  $("#job-view").hidden = view !== "job";
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (view === "jobs") enterJobs(arg);
  if (view === "job") enterJob(arg);
  clearInterval(timer);
  timer = setInterval(refresh, view === "job" ? 1000 : REFRESH_MS);
  refresh();
}

async function act(method, path) {
  try {
    await api(method, path);
    await refresh();
  } catch (err) {
    showError(err);
  }
}

// Asks in a modal dialog; resolves true on Confirm, false on Back or Escape.
function confirmDialog(text) {
  const dialog = $("#confirm"), back = document.activeElement;
  $("#confirm-text").textContent = text;
  return new Promise((resolve) => {
    const done = (answer) => {
      $("#confirm-ok").onclick = $("#confirm-back").onclick = dialog.onclose = null;
      if (dialog.open) dialog.close();
      if (back && back.focus) back.focus();
      resolve(answer);
    };
    $("#confirm-ok").onclick = () => done(true);
    $("#confirm-back").onclick = () => done(false);
    dialog.onclose = () => done(false);
    dialog.showModal();
    $("#confirm-ok").focus();
  });
}

function start() {
  $("#login").hidden = true;
  $("#logout").hidden = false;
  $("#nav").hidden = false;
  showView();
}

function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(timer);
  for (const id of ["#board", "#jobs-view", "#job-view", "#logout", "#nav"]) $(id).hidden = true;
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
  window.addEventListener("hashchange", () => { if (token()) showView(); });
  setupJobs();
  setupJob();
  if (token()) start(); else $("#login").hidden = false;
});
