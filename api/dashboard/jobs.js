// The job list (#/jobs?filters): jobs by queue, state, kind, organizer,
// error text and time range, newest first, a page at a time (the API's
// keyset cursor), and one action on every job the filters match. A
// dry run counts them first; the dialog says how many; the action then
// touches only jobs up to the highest id counted.
"use strict";

const PAGE_SIZE = 50;
const FILTER_FIELDS = ["queue", "state", "kind", "organizer_id", "q", "since", "until"];
const BULK_VERBS = { retry: ["Retry", "Retried", "dead"], cancel: ["Cancel", "Cancelled", "available"],
                     discard: ["Discard", "Discarded", "dead"] };
let listFilter = "";
let cursors = [null]; // the cursor of each page seen; the last is the page shown
let nextCursor = null;

// The filters of the hash, without empty values.
function filterOf(params) {
  const f = {};
  for (const k of FILTER_FIELDS) {
    const v = params.get(k);
    if (v) f[k] = v;
  }
  return f;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

// An ISO time as a datetime-local input's value (local time), and back.
function toLocalInput(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
         `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fromLocalInput(value) {
  const d = new Date(value);
  return isNaN(d) ? "" : d.toISOString();
}

function fillQueueChoices(names) {
  const select = $("#f-queue"), chosen = select.value;
  const have = [...select.options].map((o) => o.value);
  for (const name of names) {
    if (!have.includes(name)) select.add(new Option(name, name));
  }
  select.value = chosen;
}

function enterJobs(params) {
  const f = filterOf(params), key = new URLSearchParams(f).toString();
  if (f.queue) fillQueueChoices([f.queue]);
  for (const k of FILTER_FIELDS) {
    const input = $("#filter").elements[k];
    input.removeAttribute("aria-invalid");
    input.value = (k === "since" || k === "until") && f[k] ? toLocalInput(f[k]) : f[k] || "";
  }
  if (key !== listFilter) {
    listFilter = key;
    cursors = [null];
    $("#bulk-result").textContent = "";
  }
}

function renderJobs(jobs) {
  keepFocus($("#jobs"), () => fillJobs(jobs));
}

function fillJobs(jobs) {
  const body = $("#jobs tbody");
  body.replaceChildren();
  $("#jobs-empty").hidden = jobs.length > 0;
  for (const j of jobs) {
    const row = body.insertRow();
    row.dataset.job = j.id;
    row.dataset.state = j.state;
    linkCell(row, j.id, "#/job/" + j.id, "num");
    cell(row, j.queue);
    cell(row, j.kind);
    cell(row, j.state);
    cell(row, j.attempt + "/" + j.max_attempts, "num");
    cell(row, j.created_at);
    cell(row, j.finished_at);
    cell(row, j.last_error, "error");
  }
}

async function refreshJobs(params) {
  const q = new URLSearchParams(filterOf(params));
  q.set("limit", String(PAGE_SIZE));
  const cursor = cursors[cursors.length - 1];
  if (cursor) q.set("cursor", String(cursor));
  try {
    const page = await api("GET", "/v1/admin/jobs?" + q.toString());
    renderJobs(page.jobs);
    nextCursor = page.next_cursor;
    $("#page-older").disabled = !nextCursor;
    $("#page-newer").disabled = cursors.length < 2;
  } catch (err) {
    markField(err);
    throw err;
  }
}

// A 422 naming a filter field marks that input.
function markField(err) {
  const input = err.field && $("#filter").elements[err.field];
  if (input) input.setAttribute("aria-invalid", "true");
}

function describe(f) {
  const parts = Object.entries(f).map(([k, v]) => `${k.replace("_id", "")} ${v}`);
  return parts.length ? " matching " + parts.join(", ") : "";
}

function bulkBody(f) {
  const body = Object.assign({}, f);
  if (body.organizer_id) body.organizer_id = Number(body.organizer_id);
  return body;
}

async function bulk(action) {
  const [verb, done, state] = BULK_VERBS[action];
  const f = filterOf(route()[1] || new URLSearchParams());
  const out = $("#bulk-result");
  try {
    const dry = await api("POST", "/v1/admin/jobs/" + action,
                          Object.assign(bulkBody(f), { dry_run: true }));
    if (dry.count === 0) {
      out.textContent = `No ${state} job${describe(f)} to ${verb.toLowerCase()}.`;
      return;
    }
    const n = dry.count === 1 ? "1 job" : `${dry.count} jobs`;
    if (!(await confirmDialog(`${verb} ${n} (${state})${describe(f)}?`))) {
      out.textContent = "Nothing was changed.";
      return;
    }
    const res = await api("POST", "/v1/admin/jobs/" + action,
                          Object.assign(bulkBody(f), { max_id: dry.max_id }));
    out.textContent = `${done} ${res.count === 1 ? "1 job" : res.count + " jobs"}.`;
    showError(null);
    await refresh();
  } catch (err) {
    markField(err);
    showError(err);
  }
}

function setupJobs() {
  $("#filter").addEventListener("submit", (e) => {
    e.preventDefault();
    const form = e.target, f = {};
    for (const k of FILTER_FIELDS) {
      let v = form.elements[k].value.trim();
      if (k === "since" || k === "until") v = v ? fromLocalInput(v) : "";
      if (v) f[k] = v;
    }
    location.hash = jobsHref(f);
    if (route()[0] === "jobs") refresh(); // the same filters again: reload the page
  });
  $("#f-clear").addEventListener("click", () => { location.hash = "#/jobs"; });
  $("#lookup").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("#lookup-id").value.trim();
    if (/^[1-9]\d*$/.test(id)) location.hash = "#/job/" + id;
  });
  $("#page-older").addEventListener("click", () => {
    if (!nextCursor) return;
    cursors.push(nextCursor);
    refresh();
  });
  $("#page-newer").addEventListener("click", () => {
    if (cursors.length > 1) cursors.pop();
    refresh();
  });
  for (const b of document.querySelectorAll("[data-bulk]")) {
    b.addEventListener("click", () => bulk(b.dataset.bulk));
  }
}
