// Tether review: two small behaviours, no framework.
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
