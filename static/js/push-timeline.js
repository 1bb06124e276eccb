// Push timelines: each card follows its push live from /api/pushes?ids=...&since=.
"use strict";

(() => {
  const root = document.getElementById("pushes");
  if (!root) return;
  const { el, poll, size, clock, elapsed } = window.DccLive;
  // the states as the server defines them (webapp/push/states.py), from base.html
  const states = JSON.parse(document.body.dataset.pushStates);

  function render(p) {
    const c = root.querySelector(`[data-push="${p.id}"]`);
    if (!c) return;
    const f = (name) => c.querySelector(`[data-field="${name}"]`);
    c.className = "card push state-" + p.state;
    f("state").textContent = p.state;
    const bar = f("progress");
    bar.max = p.total || 1;
    bar.value = p.bytes_sent;
    f("bytes").textContent = `${size(p.bytes_sent)} of ${size(p.total)}`;
    const t0 = p.events.length ? p.events[0].at : 0;
    f("events").replaceChildren(...p.events.map((e, i) =>
      el("li", { class: `${e.kind} step-${e.state}` },
        el("time", {}, i === 0 ? clock(e.at) : elapsed(e.at - t0)), " ",
        el("strong", {}, e.state), " ", e.detail || "")));
    const failed = p.state === states.failed;
    const reason = f("reason");
    reason.hidden = !failed;
    if (failed) {
      reason.replaceChildren("Failed: ", el("strong", {}, p.reason || "failed"),
        p.detail ? ": " + p.detail : "");
    }
    f("retry").hidden = !failed;
    // final, or past cancelling: the device confirms or rolls back by itself
    f("cancel").hidden = states.final.includes(p.state) || states.device_decides.includes(p.state);
  }

  poll(root.dataset.pollUrl, (data) => data.pushes.forEach(render));
})();
