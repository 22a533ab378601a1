// Tether review: three small behaviours, no framework.
// 1. A decision form submits once (the server also dedups by the form's nonce).
// 2. The outcome panel refreshes itself until the run has the decision; if someone else
//    (or Slack) decides first, the decision forms are removed and the outcome is shown.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-once")) return;
  if (form.dataset.sent) { event.preventDefault(); return; }
  form.dataset.sent = "1";
  form.querySelectorAll("button[type=submit]").forEach((b) => { b.disabled = true; b.textContent = "Sending…"; });
});

function pollOutcome() {
  const panel = document.querySelector("#outcome[data-poll]");
  if (!panel) return;
  const delay = Number(panel.dataset.pollMs || 2000);
  window.setTimeout(async () => {
    try {
      const response = await fetch(panel.dataset.poll, { credentials: "same-origin" });
      if (response.ok) {
        const wasPending = panel.dataset.state === "pending";
        panel.outerHTML = await response.text();
        const now = document.querySelector("#outcome");
        if (wasPending && now && now.dataset.state !== "pending") {
          // Decided (here, by someone else or in Slack): reload so every panel agrees.
          document.querySelectorAll(".decision-forms").forEach((el) => el.remove());
          window.location.reload();
          return;
        }
      }
    } catch (err) {
      // The server is restarting or the network blinked; try again on the next tick.
    }
    pollOutcome();
  }, delay);
}

document.addEventListener("DOMContentLoaded", pollOutcome);

// 3. A run's timeline follows the run live: each step event from the server-sent event stream
//    is added as a row (built with textContent: nothing from the stream is parsed as HTML).
function followRun() {
  const table = document.querySelector("#run-timeline[data-stream]");
  if (!table || !window.EventSource) return;
  const body = table.querySelector("tbody");
  const url = `${table.dataset.stream}?after=${encodeURIComponent(table.dataset.after || "0")}`;
  const source = new EventSource(url);
  const cell = (row, text, className) => {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    row.appendChild(td);
    return td;
  };
  source.addEventListener("step", (message) => {
    const e = JSON.parse(message.data);
    if (body.querySelector(`tr[data-seq="${Number(e.seq)}"]`)) return;
    const row = document.createElement("tr");
    row.className = "step-event step-event-live";
    row.dataset.seq = String(e.seq);
    cell(row, String(e.seq), "num");
    cell(row, e.step);
    const badge = document.createElement("span");
    badge.className = `status-badge status-${e.state}`;
    badge.textContent = e.state.replace(/_/g, " ");
    cell(row, "").appendChild(badge);
    cell(row, e.model || "");
    cell(row, e.cost_usd ? `$${e.cost_usd.toFixed(4)}` : "", "num");
    cell(row, e.latency_ms != null ? `${Math.round(e.latency_ms)} ms` : "", "num");
    cell(row, e.input_tokens || e.output_tokens ? `${e.input_tokens} / ${e.output_tokens}` : "", "num");
    cell(row, e.confidence_score != null ? `${e.confidence_score.toFixed(2)} ${e.confidence_outcome || ""}` : "", "num");
    const list = document.createElement("ul");
    list.className = "guards";
    (e.guards || []).forEach((g) => {
      const li = document.createElement("li");
      li.textContent = `${g.guard}: ${g.outcome}${g.detail ? ` (${g.detail})` : ""}`;
      list.appendChild(li);
    });
    cell(row, "").appendChild(list);
    cell(row, [e.actor, e.detail].filter(Boolean).join(" · "));
    cell(row, e.at.replace("T", " ").slice(0, 19) + " UTC", "small");
    body.appendChild(row);
  });
  const finish = (text, state) => {
    source.close();
    const note = document.querySelector("#live-note");
    if (note) note.textContent = text;
    const badge = document.querySelector("#run-state");
    if (badge && state) {
      badge.textContent = state;
      badge.className = `status-badge status-${state}`;
    }
  };
  source.addEventListener("end", (message) => {
    const ended = JSON.parse(message.data);
    finish("The run has ended.", ended.state);
  });
  source.addEventListener("problem", (message) => {
    finish(JSON.parse(message.data).detail, null);
  });
}

document.addEventListener("DOMContentLoaded", followRun);
