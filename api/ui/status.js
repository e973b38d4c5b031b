// The status page: it asks the node that served it for the cluster's
// status every few seconds and draws it. Every text from the server is set
// with textContent, never parsed as HTML.
"use strict";

const refreshMs = 5000;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) {
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function count(n) {
  return n >= 1e6 ? (n / 1e6).toFixed(1) + "M" : n >= 1e4 ? (n / 1e3).toFixed(1) + "k" : String(n);
}

function percent(part, whole) {
  return whole > 0 ? (100 * part / whole).toFixed(1) + " %" : "–";
}

function bar(fraction) {
  const inner = el("span");
  inner.style.width = Math.min(100, Math.max(0, 100 * fraction)).toFixed(1) + "%";
  return el("span", { class: fraction >= 0.95 ? "bar full" : "bar" }, inner);
}

function replaceRows(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function shortID(id) {
  return id ? id.slice(-8) : "";
}

function renderMembers(members) {
  const rows = members.map(m => {
    const s = m.status && m.status.stats;
    const state = m.untrusted ? "untrusted" : m.state;
    const name = el("td", { title: m.id }, shortID(m.id), m.self ? " (this node)" : "");
    if (!s) {
      return el("tr", {}, name, el("td", { class: "state-" + state }, state), el("td", {}, m.public_addr),
        el("td", { colspan: "5", class: "muted" }, m.error || "no status"));
    }
    const t = s.traffic;
    // The quota bounds whole bodies and the parts of sparse copies alike.
    const used = s.journal.local_bytes + (s.journal.sparse_bytes || 0);
    const disk = el("td");
    if (s.quota > 0) {
      disk.append(bar(used / s.quota), bytes(used) + " / " + bytes(s.quota));
    } else {
      disk.append(bytes(used) + " (no quota; " + bytes(s.filesystem.free) + " free)");
    }
    return el("tr", {}, name, el("td", { class: "state-" + state }, state), el("td", {}, m.public_addr), disk,
      el("td", { class: "num" }, count(s.journal.local_objects)),
      el("td", { class: "num" }, percent(t.hits_local + t.hits_peer, t.hits_local + t.hits_peer + t.hits_remote)),
      el("td", { class: "num" }, s.fills.in_flight),
      el("td", { class: "num" }, s.repair_backlog));
  });
  replaceRows(document.querySelector("#members tbody"), rows);
  const states = {};
  for (const m of members) {
    const st = m.untrusted ? "untrusted" : m.state;
    states[st] = (states[st] || 0) + 1;
  }
  document.getElementById("summary").textContent =
    Object.entries(states).map(([k, v]) => v + " " + k).join(", ");
}

// intervals sums every member's traffic per 10 s interval: the
// differences between its consecutive samples, placed by the later one.
function intervals(members) {
  const step = 10000;
  const buckets = new Map();
  for (const m of members) {
    const h = (m.status && m.status.history) || [];
    for (let i = 1; i < h.length; i++) {
      const a = h[i - 1], b = h[i];
      const d = {
        local: b.hits_local - a.hits_local, peer: b.hits_peer - a.hits_peer, remote: b.hits_remote - a.hits_remote,
        bytesSaved: b.bytes_local - a.bytes_local + b.bytes_peer - a.bytes_peer,
      };
      if (d.local < 0 || d.peer < 0 || d.remote < 0) continue; // the node restarted between them
      const k = Math.floor(Date.parse(b.time) / step);
      const cur = buckets.get(k) || { local: 0, peer: 0, remote: 0, bytesSaved: 0 };
      for (const f of Object.keys(d)) cur[f] += d[f];
      buckets.set(k, cur);
    }
  }
  return { step, buckets };
}

function renderTraffic(members) {
  const { step, buckets } = intervals(members);
  // The last half hour (what a node keeps), the newest interval on the
  // right.
  const now = Math.floor(Date.now() / step);
  const n = 180;
  const tot = { local: 0, peer: 0, remote: 0, bytesSaved: 0 };
  for (const [k, v] of buckets) {
    if (k > now - n) for (const f of Object.keys(tot)) tot[f] += v[f];
  }
  const minutes = Math.round(n * step / 60000);
  document.getElementById("window").textContent = minutes + " minutes";
  const saved = tot.local + tot.peer;
  document.getElementById("ratio").textContent = percent(saved, saved + tot.remote);
  document.getElementById("saved").textContent = count(saved);
  document.getElementById("egress").textContent = bytes(tot.bytesSaved);
  document.getElementById("remote").textContent = count(tot.remote);

  const chart = document.getElementById("chart");
  const W = 760, H = 180, left = 40, bottom = 20, top = 8;
  let max = 1;
  for (let i = 0; i < n; i++) {
    const v = buckets.get(now - n + 1 + i);
    if (v) max = Math.max(max, v.local + v.peer + v.remote);
  }
  const parts = [];
  for (const frac of [0, 0.5, 1]) {
    const y = top + (H - bottom - top) * (1 - frac);
    parts.push(svg("line", { x1: left, x2: W, y1: y, y2: y }));
    const label = svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" });
    label.textContent = count(Math.round(max * frac));
    parts.push(label);
  }
  const bw = (W - left) / n;
  for (let i = 0; i < n; i++) {
    const v = buckets.get(now - n + 1 + i);
    if (!v) continue;
    let y = H - bottom;
    for (const src of ["local", "peer", "remote"]) {
      const h = (H - bottom - top) * v[src] / max;
      if (h <= 0) continue;
      y -= h;
      const r = svg("rect", { class: src, x: left + i * bw + 0.5, y: y, width: Math.max(1, bw - 1), height: h });
      const tip = svg("title");
      tip.textContent = src + ": " + v[src];
      r.append(tip);
      parts.push(r);
    }
  }
  const ago = svg("text", { x: left, y: H - 4 });
  ago.textContent = minutes + " min ago";
  const nowLabel = svg("text", { x: W, y: H - 4, "text-anchor": "end" });
  nowLabel.textContent = "now";
  parts.push(ago, nowLabel);
  chart.replaceChildren(...parts);
}

function renderJobs(members) {
  const rows = [];
  for (const m of members) {
    for (const j of (m.status && m.status.jobs) || []) {
      const progress = el("td");
      progress.append(bar(j.total > 0 ? j.done / j.total : 1), j.done + " / " + j.total);
      rows.push(el("tr", {}, el("td", { title: j.id }, shortID(j.id)), el("td", { title: m.id }, shortID(m.id)),
        el("td", {}, j.state), progress, el("td", { class: "num" }, j.loaded), el("td", { class: "num" }, j.skipped),
        el("td", { class: "num" }, j.failed), el("td", { class: "num" }, bytes(j.bytes))));
    }
  }
  replaceRows(document.querySelector("#jobs tbody"), rows);
  document.getElementById("nojobs").hidden = rows.length > 0;
}

function renderErrors(members) {
  const all = [];
  for (const m of members) {
    for (const e of (m.status && m.status.errors) || []) all.push({ node: m.id, ...e });
  }
  all.sort((a, b) => Date.parse(b.time) - Date.parse(a.time));
  const rows = all.slice(0, 50).map(e => el("tr", {},
    el("td", {}, new Date(e.time).toLocaleTimeString()), el("td", { title: e.node }, shortID(e.node)),
    el("td", { class: "level-" + e.level }, e.level),
    el("td", {}, e.message, e.attrs ? el("div", { class: "attrs" }, e.attrs) : "")));
  replaceRows(document.querySelector("#errors tbody"), rows);
  document.getElementById("noerrors").hidden = rows.length > 0;
}

async function refresh() {
  const problem = document.getElementById("problem");
  try {
    const resp = await fetch("/api/v1/status", { credentials: "same-origin", cache: "no-store" });
    if (!resp.ok) {
      let msg = resp.status + " " + resp.statusText;
      try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
      throw new Error(msg);
    }
    const st = await resp.json();
    document.getElementById("answered").textContent = "node " + shortID(st.node_id) + " · " + st.version;
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    renderMembers(st.members);
    renderTraffic(st.members);
    renderJobs(st.members);
    renderErrors(st.members);
    problem.hidden = true;
  } catch (e) {
    problem.textContent = "Cannot read the cluster's status: " + e.message;
    problem.hidden = false;
  }
}

refresh();
setInterval(refresh, refreshMs);
