// interplab attribution graph: draws graph.json as SVG (nodes by layer x position, edges by weight), with a
// threshold slider, hover values and links from features to their dashboards. Every text from the graph
// (prompt tokens, labels) is set with textContent, never parsed as HTML.
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";
  const box = document.getElementById("graph");
  if (!box) return;
  const tip = document.getElementById("graph-tip");
  const slider = document.getElementById("edge-threshold");
  const sliderValue = document.getElementById("edge-threshold-value");
  const edgeCount = document.getElementById("edge-count");
  let dashboards = {};
  try { dashboards = JSON.parse(box.dataset.dashboards || "{}"); } catch (e) { dashboards = {}; }

  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, String(v)));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function shown(token) {
    const marks = { "\u0120": " ", "\u2581": " ", "\u010a": "\u21b5", "\n": "\u21b5", "\t": "\u21e5" };
    return Array.from(String(token)).map((ch) => (ch in marks ? marks[ch] : ch)).join("");
  }

  function fmt(v) { return v === null || v === undefined ? "n/a" : Number(v).toPrecision(4); }

  function describe(n) {
    const lines = [`${n.feature_type}  ${n.node_id}`];
    if (n.feature_type === "logit") lines.push(`token ${n.feature} · logit ${fmt(n.activation)} · p ${fmt(n.token_prob)}`);
    else lines.push(`layer ${n.layer} · position ${n.ctx_idx} · token "${shown(n.token)}"`);
    if (n.feature_type === "transcoder") lines.push(`feature ${n.feature} · activation ${fmt(n.activation)}`);
    lines.push(`influence ${fmt(n.influence)}`);
    if (n.feature_type === "transcoder") {
      lines.push(dashboards[String(n.layer)] ? "click: open its dashboard" : "no dashboard for this layer");
    }
    return lines.join("\n");
  }

  function layout(data) {
    const meta = data.metadata || {};
    const tokens = meta.prompt_tokens || [];
    const nLayers = Number(meta.n_layers || 0);
    const colW = Math.max(46, Math.min(90, 1100 / Math.max(tokens.length, 1)));
    const rowH = Math.max(16, Math.min(40, 620 / (nLayers + 2)));
    const left = 46, top = 14, bottom = 70;
    const width = left + colW * Math.max(tokens.length, 1) + 10;
    const height = top + rowH * (nLayers + 2) + bottom;
    const rowOf = (n) => (n.feature_type === "embedding" ? -1 : n.feature_type === "logit" ? nLayers : Number(n.layer));
    const cells = {};
    data.nodes.forEach((n) => { const key = `${rowOf(n)}:${n.ctx_idx}`; (cells[key] = cells[key] || []).push(n); });
    const pos = {};
    Object.values(cells).forEach((group) => {
      group.sort((a, b) => Math.abs(b.influence || 0) - Math.abs(a.influence || 0));
      group.forEach((n, i) => {
        const spread = Math.min(colW * 0.8, 9 * group.length);
        const dx = group.length > 1 ? -spread / 2 + (spread * i) / (group.length - 1) : 0;
        pos[n.node_id] = { x: left + colW * (Number(n.ctx_idx) + 0.5) + dx,
                           y: top + rowH * (nLayers - rowOf(n) + 0.5) };
      });
    });
    return { tokens, nLayers, colW, rowH, left, top, width, height, pos, rowOf };
  }

  function draw(data) {
    const L = layout(data);
    const svg = svgEl("svg", { class: "graph", id: "graph-svg", width: L.width, height: L.height,
                               viewBox: `0 0 ${L.width} ${L.height}` });
    for (let r = -1; r <= L.nLayers; r += 1) {
      const y = L.top + L.rowH * (L.nLayers - r + 0.5);
      svg.append(svgEl("line", { class: "gridline", x1: L.left, x2: L.width, y1: y, y2: y }));
      const label = r === -1 ? "emb" : r === L.nLayers ? "logit" : `L${r}`;
      svg.append(svgEl("text", { class: "layerlabel", x: 2, y: y + 4 }, label));
    }
    L.tokens.forEach((t, p) => {
      const x = L.left + L.colW * (p + 0.5), y = L.height - L.top - 40;
      svg.append(svgEl("text", { class: "tokenlabel", x, y, "text-anchor": "end",
                                 transform: `rotate(-40 ${x} ${y})` }, shown(t)));
    });
    const maxW = Math.max(1e-12, ...data.links.map((l) => Math.abs(l.weight)));
    const edges = data.links.filter((l) => L.pos[l.source] && L.pos[l.target]).map((l) => {
      const a = L.pos[l.source], b = L.pos[l.target];
      const path = svgEl("path", { class: `edge ${l.weight >= 0 ? "pos" : "neg"}`,
        d: `M${a.x},${a.y} C${a.x},${(a.y + b.y) / 2} ${b.x},${(a.y + b.y) / 2} ${b.x},${b.y}`,
        "stroke-width": (0.4 + 4 * Math.abs(l.weight) / maxW).toFixed(2) });
      path.dataset.source = l.source;
      path.dataset.target = l.target;
      path.dataset.strength = String(Math.abs(l.weight) / maxW);
      svg.append(path);
      return path;
    });
    const nodes = data.nodes.map((n) => {
      const p = L.pos[n.node_id];
      const link = n.feature_type === "transcoder" ? dashboards[String(n.layer)] : undefined;
      const g = link ? svgEl("a", { href: `${link}${n.feature}` }) : svgEl("g");
      g.setAttribute("class", `node node-${n.feature_type.replace(" ", "-")}`);
      g.dataset.nodeId = n.node_id;
      g.append(svgEl("circle", { cx: p.x, cy: p.y, r: n.feature_type === "transcoder" ? 5 : 4 }));
      g.addEventListener("mouseenter", (ev) => hover(n, g, ev, edges));
      g.addEventListener("mousemove", (ev) => place(ev));
      g.addEventListener("mouseleave", () => unhover(g, edges));
      svg.append(g);
      return g;
    });
    box.replaceChildren(svg);
    const apply = () => threshold(Number(slider.value) / 100, edges, nodes);
    slider.addEventListener("input", apply);
    apply();
  }

  function threshold(t, edges, nodes) {
    sliderValue.textContent = `${Math.round(t * 100)}%`;
    const live = new Set();
    let visible = 0;
    edges.forEach((e) => {
      const keep = Number(e.dataset.strength) >= t;
      e.classList.toggle("hidden", !keep);
      if (keep) { visible += 1; live.add(e.dataset.source); live.add(e.dataset.target); }
    });
    nodes.forEach((g) => g.classList.toggle("faded", !live.has(g.dataset.nodeId)));
    edgeCount.textContent = `${visible} of ${edges.length} edges shown`;
  }

  function place(ev) {
    tip.style.left = `${ev.pageX + 12}px`;
    tip.style.top = `${ev.pageY + 12}px`;
  }

  function hover(n, g, ev, edges) {
    tip.textContent = describe(n);
    tip.classList.remove("hidden");
    place(ev);
    g.classList.add("lit");
    edges.forEach((e) => {
      if (e.dataset.source === n.node_id || e.dataset.target === n.node_id) e.classList.add("lit");
    });
  }

  function unhover(g, edges) {
    tip.classList.add("hidden");
    g.classList.remove("lit");
    edges.forEach((e) => e.classList.remove("lit"));
  }

  fetch(box.dataset.graph, { headers: { Accept: "application/json" } })
    .then((r) => { if (!r.ok) throw new Error(`HTTP ${r.status}`); return r.json(); })
    .then(draw)
    .catch((err) => {
      const msg = document.createElement("p");
      msg.className = "error";
      msg.id = "graph-error";
      msg.textContent = `could not load the graph: ${err.message}`;
      box.replaceChildren(msg);
    });
})();
