// interplab dashboards: live inference and steering without a page reload. Model text is only ever set with
// textContent (never innerHTML), so a token like <script> shows as text.
"use strict";

const SHADES = 20; // highlight classes h0..h20 in style.css, as render.py:shade (no inline styles: CSP)

function shadeOf(value, max) {
  if (!(max > 0) || !(value > 0)) return "h0";
  return `h${Math.ceil(Math.min(value / max, 1) * SHADES - 1e-9)}`;
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
    line.append(el("span", { className: `tok ${shadeOf(strongest[i], max)}`, textContent: displayToken(t.token),
      title: strongest[i].toFixed(3) }));
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

function fmt2(value) {
  if (value === null || value === undefined) return "n/a";
  return value !== 0 && (Math.abs(value) < 1e-2 || Math.abs(value) >= 1e6) ? value.toExponential(2) : value.toFixed(2);
}

function generationCard(title, g, prompt, id, cls) {
  const body = el("p", { className: "ctx gen-body" }, [
    el("span", { className: "gen-prompt", textContent: prompt }),
    el("span", { className: "gen-text", textContent: g.text }),
  ]);
  const stats = el("p", { className: "muted gen-stats",
    textContent: `${g.n_new_tokens} new tokens \u00b7 perplexity under the unsteered model ${fmt2(g.perplexity)}` });
  const card = el("section", { className: `gen ${cls}` }, [el("h3", { className: "gen-title", textContent: title }), body, stats]);
  if (id) card.id = id;
  card.dataset.coef = String(g.coef);
  return card;
}

function renderSteer(data, box) {
  const source = data.vector ? `vector ${data.vector}` : `latent ${data.latent}`;
  const meta = el("p", { className: "meta", id: "steer-meta",
    textContent: `${data.model} \u00b7 ${data.hook} \u00b7 ${source} \u00b7 coefficient 1 = hook norm ${fmt2(data.hook_norm)}` });
  const cards = [generationCard("unsteered", data.unsteered, data.prompt, "steer-unsteered", "unsteered")];
  data.steered.forEach((g) => cards.push(generationCard(`steered, coefficient ${g.coef}`, g, data.prompt, "", "steered")));
  box.replaceChildren(meta, el("div", { className: "gens" }, cards));
}

function steerPayload() {
  const source = document.getElementById("steer-source").value;
  const coefs = document.getElementById("steer-coefs").value.split(/[\s,]+/).filter((c) => c !== "");
  if (coefs.some((c) => Number.isNaN(Number(c)))) throw new Error("more coefficients: give numbers like -0.5, 0.5, 1");
  const payload = {
    coef: Number(document.getElementById("steer-coef").value || 0),
    coefs: coefs.map(Number),
    prompt: document.getElementById("steer-prompt").value,
    max_new_tokens: Number(document.getElementById("steer-max").value) || 24,
  };
  if (source.startsWith("vector:")) {
    payload.vector = source.slice("vector:".length);
  } else {
    payload.sae_id = Number(source.slice("sae:".length));
    const latent = document.getElementById("steer-latent").value;
    payload.latent = latent === "" ? null : Number(latent);
  }
  return payload;
}

async function runSteer(event) {
  event.preventDefault();
  const box = document.getElementById("steer-results");
  const error = document.getElementById("steer-error");
  error.hidden = true;
  box.replaceChildren(el("p", { className: "muted", textContent: "generating\u2026" }));
  try {
    const resp = await fetch("/api/steer", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(steerPayload()) });
    const data = await resp.json();
    if (!resp.ok) {
      const detail = typeof data.detail === "string" ? data.detail
        : data.detail.map((d) => `${d.loc.slice(1).join(".") || "request"}: ${d.msg}`).join("; ");
      throw new Error(detail);
    }
    renderSteer(data, box);
  } catch (err) {
    box.replaceChildren();
    error.textContent = String(err.message || err);
    error.hidden = false;
  }
}

function syncSteerSource() {
  const latent = document.getElementById("steer-latent");
  latent.disabled = document.getElementById("steer-source").value.startsWith("vector:");
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("live-form");
  if (form) form.addEventListener("submit", runLive);
  const steerForm = document.getElementById("steer-form");
  if (steerForm) {
    steerForm.addEventListener("submit", runSteer);
    document.getElementById("steer-source").addEventListener("change", syncSteerSource);
    syncSteerSource();
  }
});
