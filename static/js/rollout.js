// A rollout's page, live from /api/rollouts/ID: its phase and reason, the progress, the
// failure share against the threshold, each wave's devices; Pause / Go or Resume / Cancel
// call the API and draw its answer at once.
"use strict";

(() => {
  const root = document.getElementById("rollout");
  if (!root) return;
  const { el, poll, send } = window.DccLive;
  // the phases and steps as the server defines them (webapp/rollout/states.py)
  const states = JSON.parse(root.dataset.states);
  const f = (name) => root.querySelector(`[data-field="${name}"]`);
  const forms = Array.from(root.querySelectorAll("form[data-action]"));
  const pct = (share) => Math.round(share * 100) + " %";

  function waveTitle(wave, canary) {
    if (wave === null) return "Not pushed";
    if (wave === 0 && canary) return "Canary";
    return "Wave " + (canary ? wave : wave + 1);
  }

  function pushLink(id) {
    if (!id) return "";
    return el("a", { href: root.dataset.pushUrl.replace("PUSH_ID", id) }, "push " + id);
  }

  function render(r) {
    root.className = "rollout state-" + r.state;
    f("phase").textContent = states.labels[r.state] || r.state;
    f("reason").textContent = r.reason || "";
    const bar = f("progress");
    bar.max = r.total || 1;
    bar.value = r.finished;
    const said = states.steps.filter((s) => r.counts[s]).map((s) => `${r.counts[s]} ${s}`);
    f("counts").textContent = `${r.finished} of ${r.total} devices finished: ${said.join(", ")}`;
    f("failures").textContent = `Failed: ${pct(r.failure_share)} of the devices pushed to ` +
      `(it stops over ${pct(r.settings.threshold)})`;
    for (const form of forms) {
      const action = form.dataset.action;
      form.hidden = !(action === "pause" ? r.state === states.running
        : action === "resume" ? states.resumable.includes(r.state)
          : !states.final_phases.includes(r.state));
      if (action === "resume") {
        form.querySelector("button").textContent = r.state === states.waiting_go ? "Go" : "Resume";
      }
    }
    const waves = new Map();
    for (const d of r.devices) {
      if (!waves.has(d.wave)) waves.set(d.wave, []);
      waves.get(d.wave).push(d);
    }
    f("waves").replaceChildren(...Array.from(waves, ([wave, devices]) =>
      el("section", { class: "wave", "data-wave": wave === null ? "skipped" : wave },
        el("h2", {}, waveTitle(wave, r.settings.canary)),
        el("table", {},
          el("thead", {}, el("tr", {}, ...["Device", "State", "Detail", "Push"].map(
            (h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, ...devices.map((d) =>
            el("tr", { class: "state-" + d.state, "data-device": d.device },
              el("td", {}, d.device), el("td", {}, el("span", { class: "badge" }, d.state)),
              el("td", {}, d.detail || ""), el("td", {}, pushLink(d.push_id)))))))));
  }

  const error = f("error");
  for (const form of forms) {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        render(await send(form.dataset.apiUrl, "POST"));
        error.hidden = true;
      } catch (err) {
        error.textContent = `${button.textContent}: ${err.message}`;
        error.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
  }

  poll(root.dataset.pollUrl, render);
})();
