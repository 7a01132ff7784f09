// Small charts as inline SVG, drawn here (no library, nothing fetched: the
// page's Content-Security-Policy allows only this origin's files). Each
// chart is an image with a text alternative that says what it shows.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(name, attrs) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

// An accessible SVG: role img, a <title> read by screen readers.
function svgImage(cls, width, height, label) {
  const svg = svgEl("svg", { class: cls, viewBox: `0 0 ${width} ${height}`, role: "img",
                             "aria-label": label });
  const title = svgEl("title");
  title.textContent = label;
  svg.appendChild(title);
  return svg;
}

// [[epoch, done, failed], ...] into two arrays of 60 per-minute values, oldest first.
function perMinute(series) {
  const now = Math.floor(Date.now() / 60000);
  const done = new Array(60).fill(0), failed = new Array(60).fill(0);
  for (const [epoch, d, f] of series || []) {
    const i = 59 - (now - Math.floor(epoch / 60));
    if (i >= 0 && i < 60) { done[i] = d; failed[i] = f; }
  }
  return { done, failed };
}

function linePath(values, max, x0, y0, w, h) {
  return values.map((v, i) => (i ? "L" : "M") + (x0 + (i * w) / 59).toFixed(1) + " " +
                     (y0 + h - (v / max) * h).toFixed(1)).join(" ");
}

// The queue table's sparkline: completed (blue) and failed (red) per minute.
function sparkline(series) {
  const { done, failed } = perMinute(series);
  const sum = (a) => a.reduce((x, y) => x + y, 0);
  const svg = svgImage("spark", 60, 24,
                       `Last hour: ${sum(done)} completed, ${sum(failed)} failed`);
  const max = Math.max(1, ...done, ...failed);
  for (const [values, cls] of [[done, "done"], [failed, "failed"]]) {
    svg.appendChild(svgEl("path", { class: cls, d: linePath(values, max, 0, 1, 60, 22) }));
  }
  return svg;
}

// One queue's throughput and failures over the last hour, with axes.
function throughputChart(queue) {
  const { done, failed } = perMinute(queue.series);
  const sum = (a) => a.reduce((x, y) => x + y, 0);
  const W = 320, H = 120, L = 34, T = 18, PW = W - L - 6, PH = H - T - 20;
  const max = Math.max(1, ...done, ...failed);
  const svg = svgImage("chart", W, H,
                       `Queue ${queue.name}, last hour: ${sum(done)} completed, ` +
                       `${sum(failed)} failed, at most ${max} a minute`);
  const name = svgEl("text", { x: L, y: 12, class: "label" });
  name.textContent = queue.name;
  svg.appendChild(name);
  svg.appendChild(svgEl("line", { x1: L, y1: T + PH, x2: L + PW, y2: T + PH, class: "axis" }));
  svg.appendChild(svgEl("line", { x1: L, y1: T, x2: L, y2: T + PH, class: "axis" }));
  for (const [text, y] of [[String(max), T + 4], ["0", T + PH]]) {
    const t = svgEl("text", { x: L - 4, y, class: "tick", "text-anchor": "end" });
    t.textContent = text;
    svg.appendChild(t);
  }
  for (const [text, x, anchor] of [["-60 min", L, "start"], ["now", L + PW, "end"]]) {
    const t = svgEl("text", { x, y: H - 4, class: "tick", "text-anchor": anchor });
    t.textContent = text;
    svg.appendChild(t);
  }
  svg.appendChild(svgEl("path", { class: "done", d: linePath(done, max, L, T, PW, PH) }));
  svg.appendChild(svgEl("path", { class: "failed", d: linePath(failed, max, L, T, PW, PH) }));
  return svg;
}

// Every pool's size now (solid) against what its autoscaler wants (outline).
function poolChart(pools) {
  const byPool = new Map();
  for (const p of pools) {
    if (p.stale) continue;
    const a = byPool.get(p.pool) || { current: 0, desired: 0, max: 0 };
    a.current += p.current; a.desired += p.desired; a.max += p.max;
    byPool.set(p.pool, a);
  }
  const rows = [...byPool.entries()];
  const W = 320, ROW = 22, L = 90, H = Math.max(1, rows.length) * ROW + 24;
  const top = Math.max(1, ...rows.map(([, a]) => Math.max(a.current, a.desired, a.max)));
  const label = rows.length
    ? "Pool sizes: " + rows.map(([n, a]) => `${n} ${a.current} of ${a.desired} desired`).join(", ")
    : "Pool sizes: no live pool";
  const svg = svgImage("chart pools", W, H, label);
  rows.forEach(([name, a], i) => {
    const y = 6 + i * ROW, scale = (W - L - 40) / top;
    const t = svgEl("text", { x: L - 6, y: y + 13, class: "label", "text-anchor": "end" });
    t.textContent = name;
    svg.appendChild(t);
    svg.appendChild(svgEl("rect", { x: L, y: y + 3, width: Math.max(1, a.current * scale),
                                    height: 12, class: "current" }));
    svg.appendChild(svgEl("rect", { x: L, y: y + 1, width: Math.max(1, a.desired * scale),
                                    height: 16, class: "desired" }));
    const v = svgEl("text", { x: L + Math.max(a.current, a.desired) * scale + 4, y: y + 13,
                              class: "tick" });
    v.textContent = `${a.current}/${a.desired}`;
    svg.appendChild(v);
  });
  const legend = svgEl("text", { x: L, y: H - 4, class: "tick" });
  legend.textContent = "size now / desired (outline)";
  svg.appendChild(legend);
  return svg;
}

function renderCharts(queues, pools) {
  const box = document.getElementById("charts");
  const figures = queues.map((q) => throughputChart(q));
  figures.push(poolChart(pools));
  box.replaceChildren(...figures);
}
