// interplab dashboards: live inference without a page reload. Model text is only ever set with
// textContent (never innerHTML), so a token like <script> shows as text.
"use strict";

function alphaOf(value, max) {
  if (!(max > 0) || !(value > 0)) return 0;
  return Math.min(value / max, 1);
}

function displayToken(token) {
  const marks = { "\u0120": " ", "\u2581": " ", "\u010a": "\u21b5", "\n": "\u21b5", "\r": "", "\t": "\u21e5" };
  return Array.from(token).map((ch) => (ch in marks ? marks[ch] : ch)).join("");
}

function el(tag, props, children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  (children || []).forEach((c) => node.append(c));
  return node;
}

function renderLive(data, box) {
  const strongest = data.tokens.map((t) => (t.latents.length ? t.latents[0].value : 0));
  const max = Math.max(0, ...strongest);
  const line = el("p", { className: "ctx", id: "live-tokens" });
  data.tokens.forEach((t, i) => {
    const span = el("span", { className: "tok", textContent: displayToken(t.token), title: strongest[i].toFixed(3) });
    span.style.backgroundColor = `rgba(255, 110, 0, ${alphaOf(strongest[i], max).toFixed(3)})`;
    line.append(span);
  });
  const body = el("tbody");
  data.tokens.forEach((t) => {
    const cell = el("td");
    t.latents.forEach((l, j) => {
      cell.append(el("a", { href: `/sae/${data.sae_id}/feature/${l.idx}`, textContent: String(l.idx) }));
      cell.append(` (${l.value.toFixed(2)})${j < t.latents.length - 1 ? ", " : ""}`);
    });
    if (!t.latents.length) cell.append(el("span", { className: "muted", textContent: "none" }));
    body.append(el("tr", { className: "live-row" }, [el("td", { className: "tokcell", textContent: displayToken(t.token) }), cell]));
  });
  const head = el("thead", {}, [el("tr", {}, [el("th", { textContent: "token" }), el("th", { textContent: "firing latents (value)" })])]);
  box.replaceChildren(line, el("table", { className: "grid", id: "live-table" }, [head, body]));
}

async function runLive(event) {
  event.preventDefault();
  const box = document.getElementById("live-results");
  const error = document.getElementById("live-error");
  const payload = {
    sae_id: Number(document.getElementById("live-sae").value),
    text: document.getElementById("live-text").value,
    top_n: Number(document.getElementById("live-topn").value) || 5,
  };
  error.hidden = true;
  box.replaceChildren(el("p", { className: "muted", textContent: "running…" }));
  try {
    const resp = await fetch("/api/live", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload) });
    const data = await resp.json();
    if (!resp.ok) throw new Error(typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail));
    renderLive(data, box);
  } catch (err) {
    box.replaceChildren();
    error.textContent = String(err.message || err);
    error.hidden = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("live-form");
  if (form) form.addEventListener("submit", runLive);
});
