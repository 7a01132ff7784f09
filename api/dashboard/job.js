// One job (#/job/ID): its fields, payload, the job that chained it and the
// ones it chained, every attempt with its error and duration, and a
// timeline; retry, cancel or discard it. Refreshed every second, so a
// retried job is seen running and then gone (completed jobs are deleted).
"use strict";

let jobId = null;
let jobState = null;
const JOB_ACTIONS = { retry: ["Retry", "dead"], cancel: ["Cancel", "available"],
                      discard: ["Discard", "dead"] };

function enterJob(id) {
  if (id === jobId) return;
  jobId = id;
  jobState = null;
  $("#job-title").textContent = "Job " + id;
  for (const sel of ["#job-fields", "#job-payload", "#job-parent", "#job-children",
                     "#attempts tbody", "#timeline"]) $(sel).replaceChildren();
  $("#job-state").textContent = "";
  $("#job-gone").hidden = true;
}

function duration(ms) {
  if (ms === null || ms === undefined) return "";
  return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
}

function renderFields(j) {
  const dl = $("#job-fields");
  dl.replaceChildren();
  const rows = [["Queue", j.queue], ["Kind", j.kind], ["Priority", j.priority],
                ["Attempts", j.attempt + " of " + j.max_attempts], ["Timeout", j.timeout_ms + " ms"],
                ["Unique key", j.unique_key === null ? "none" : j.unique_key],
                ["Created", j.created_at], ["Runs at", j.run_at],
                ["Finished", j.finished_at || ""], ["Worker", j.locked_by || ""],
                ["Progress", j.progress === null ? "" : j.progress + "%"]];
  for (const [k, v] of rows) {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = String(v);
    dl.append(dt, dd);
  }
}

function jobLine(j) {
  const li = document.createElement("li");
  li.append(link("Job " + j.id, "#/job/" + j.id), ` ${j.kind} in ${j.queue}, ${j.state}`);
  return li;
}

function renderChain(j) {
  const parent = $("#job-parent");
  parent.replaceChildren();
  if (j.parent) {
    parent.append("Chained by ", link("job " + j.parent.id, "#/job/" + j.parent.id),
                  ` (${j.parent.kind}, ${j.parent.state}).`);
  } else if (j.parent_id) {
    parent.textContent = `Chained by job ${j.parent_id}, which completed and is no longer kept.`;
  } else {
    parent.textContent = "Not chained by another job.";
  }
  const list = $("#job-children");
  list.replaceChildren(...j.children.map(jobLine));
  if (!j.children.length) {
    const li = document.createElement("li");
    li.textContent = "It chained no job that is still kept.";
    list.appendChild(li);
  }
}

function renderAttempts(j) {
  const body = $("#attempts tbody");
  body.replaceChildren();
  $("#attempts-empty").hidden = j.attempts.length > 0;
  for (const a of j.attempts) {
    const row = body.insertRow();
    cell(row, a.attempt, "num");
    cell(row, a.started_at);
    cell(row, a.finished_at);
    cell(row, duration(a.duration_ms), "num");
    cell(row, a.worker);
    cell(row, a.error, "error");
  }
}

// What happened to the job, in time order.
function timelineOf(j) {
  const events = [[j.created_at, "created"]];
  if (j.run_at !== j.created_at) events.push([j.run_at, "runnable from"]);
  for (const a of j.attempts) {
    if (a.started_at) events.push([a.started_at, `attempt ${a.attempt} started`]);
    events.push([a.finished_at, `attempt ${a.attempt} failed after ${duration(a.duration_ms) ||
                 "an unknown time"}: ${a.error}`]);
  }
  for (const x of j.actions || []) events.push([x.at, `${x.action} by token ${x.token_id}`]);
  if (j.state === "running" && j.attempted_at) {
    events.push([j.attempted_at, `attempt ${j.attempt} started, running on ${j.locked_by}`]);
  }
  if (j.finished_at) events.push([j.finished_at, j.state]);
  return events.sort((a, b) => new Date(a[0]) - new Date(b[0]));
}

function renderTimeline(j) {
  $("#timeline").replaceChildren(...timelineOf(j).map(([at, what]) => {
    const li = document.createElement("li"), time = document.createElement("time");
    time.dateTime = at;
    time.textContent = at;
    li.append(time, " " + what);
    return li;
  }));
}

function renderJob(j) {
  jobState = j.state;
  $("#job-state").textContent = j.state;
  $("#job-state").dataset.state = j.state;
  $("#job-gone").hidden = true;
  renderFields(j);
  $("#job-payload").textContent = JSON.stringify(j.payload, null, 2);
  keepFocus($("#job-view"), () => renderChain(j));
  renderAttempts(j);
  renderTimeline(j);
  for (const b of document.querySelectorAll("#job-view [data-act]")) {
    b.disabled = JOB_ACTIONS[b.dataset.act][1] !== j.state;
  }
}

function renderGone() {
  jobState = "gone";
  $("#job-state").textContent = "gone";
  $("#job-state").dataset.state = "gone";
  $("#job-gone").hidden = false;
  for (const b of document.querySelectorAll("#job-view [data-act]")) b.disabled = true;
}

async function refreshJob(id) {
  try {
    renderJob(await api("GET", "/v1/admin/jobs/" + id));
  } catch (err) {
    if (err.status !== 404) throw err;
    if (jobState === null) throw err; // never seen: an unknown id
    renderGone();
  }
}

async function jobAction(action) {
  const id = jobId;
  if (!(await confirmDialog(`${JOB_ACTIONS[action][0]} job ${id}?`))) return;
  try {
    await api("POST", `/v1/admin/jobs/${id}/${action}`);
    await refresh();
  } catch (err) {
    showError(err);
  }
}

function setupJob() {
  for (const b of document.querySelectorAll("#job-view [data-act]")) {
    b.addEventListener("click", () => jobAction(b.dataset.act));
  }
}
