// interplab lens page: runs the lens through /api/lens without a reload and shows a cell's top tokens on hover.
// Model text is only ever set with textContent (never innerHTML), so a token like <script> shows as text.
"use strict";

const LENS_SHADES = 20; // classes h0..h20 in style.css, as render.py:shade

function lensShade(prob) {
  return prob > 0 ? `h${Math.ceil(Math.min(prob, 1) * LENS_SHADES - 1e-9)}` : "h0";
}

function lensToken(token) {
  const marks = { "\u0120": " ", "\u2581": " ", "\u010a": "\u21b5", "\n": "\u21b5", "\r": "", "\t": "\u21e5" };
  return Array.from(token).map((ch) => (ch in marks ? marks[ch] : ch)).join("");
}

function lensNode(tag, props, children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  (children || []).forEach((c) => node.append(c));
  return node;
}

function cellTip(cell) {
  const lines = cell.top.map((t) => `${lensToken(t.token)}\t${t.prob.toFixed(3)}`);
  lines.push(`KL to output\t${cell.kl.toFixed(3)}`);
  return lines.join("\n");
}

function renderLens(data, box) {
  const meta = lensNode("p", { className: "meta", id: "lens-meta",
    textContent: `${data.model} \u00b7 ${data.lens} lens \u00b7 ${data.layers.length} layers \u00d7 ${data.tokens.length} positions` });
  const head = lensNode("tr", {}, [lensNode("th", { textContent: "layer" })]);
  data.tokens.forEach((t) => head.append(lensNode("th", { className: "tokcell", textContent: lensToken(t) })));
  const body = lensNode("tbody");
  for (let layer = data.rows.length - 1; layer >= 0; layer -= 1) {
    const tr = lensNode("tr", {}, [lensNode("th", { textContent: data.layers[layer] })]);
    data.rows[layer].forEach((cell, pos) => {
      const td = lensNode("td", { className: `lens-cell tok ${lensShade(cell.top[0].prob)}`,
        textContent: lensToken(cell.top[0].token), title: cellTip(cell).replace(/\t/g, " ") });
      td.dataset.tip = cellTip(cell);
      td.dataset.layer = data.layers[layer];
      td.dataset.position = String(pos);
      tr.append(td);
    });
    body.append(tr);
  }
  const table = lensNode("table", { className: "grid lens-grid", id: "lens-grid" }, [lensNode("thead", {}, [head]), body]);
  box.replaceChildren(meta, lensNode("div", { className: "lens-scroll" }, [table]));
}

function showCell(event) {
  const cell = event.target.closest("td.lens-cell");
  if (!cell) return;
  document.querySelectorAll("td.lens-cell.active").forEach((c) => c.classList.remove("active"));
  cell.classList.add("active");
  const detail = document.getElementById("lens-detail");
  detail.textContent = `layer ${cell.dataset.layer}, position ${cell.dataset.position}\n${cell.dataset.tip}`;
}

async function runLens(event) {
  event.preventDefault();
  const box = document.getElementById("lens-results");
  const error = document.getElementById("lens-error");
  const model = document.getElementById("lens-model").value;
  const payload = {
    lens: document.getElementById("lens-kind").value,
    prompt: document.getElementById("lens-prompt").value,
    top_k: Number(document.getElementById("lens-topk").value) || 5,
  };
  if (model) payload.model = model;
  error.hidden = true;
  box.replaceChildren(lensNode("p", { className: "muted", textContent: "running\u2026" }));
  try {
    const resp = await fetch("/api/lens", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });
    const data = await resp.json();
    if (!resp.ok) {
      const detail = typeof data.detail === "string" ? data.detail
        : data.detail.map((d) => `${d.loc.slice(1).join(".") || "request"}: ${d.msg}`).join("; ");
      throw new Error(detail);
    }
    renderLens(data, box);
  } catch (err) {
    box.replaceChildren();
    error.textContent = String(err.message || err);
    error.hidden = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("lens-form");
  if (form) form.addEventListener("submit", runLens);
  const box = document.getElementById("lens-results");
  if (box) box.addEventListener("mouseover", showCell);
});
