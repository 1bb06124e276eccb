// The devices page: live cards from /api/devices?since=, and plugin switches that send a
// command and then show what the device reports back (not what was clicked).
"use strict";

(() => {
  const root = document.getElementById("devices");
  if (!root) return;
  const { el, poll, send, csrfHeaders, size, ago, duration } = window.DccLive;
  const lastSeen = new Map(); // device name -> [last_seen, note]
  const PENDING_MS = 5000; // a device answers a command with its new state within a moment
  const pending = new WeakMap(); // switch -> timer that stops waiting for the device
  const shownFiles = new WeakMap(); // a card's file list -> the names and hashes it shows

  function card(name) {
    for (const c of root.querySelectorAll("[data-device]")) {
      if (c.dataset.device === name) return c;
    }
    const pushUrl = new URL(root.dataset.pushUrl, location.href);
    pushUrl.searchParams.set("device", name);
    const c = el("article", { class: "card device", "data-device": name },
      el("header", {}, el("h2", {}, name), el("span", { class: "badge", "data-field": "state" }),
        el("span", { class: "badge probation", "data-field": "probation", hidden: true,
          title: "Running an update on probation: it takes no other until it confirms or rolls back." },
        "on probation")),
      el("p", { class: "insecure", "data-field": "insecure", hidden: true,
        title: "It takes unsigned triggers: anyone who can publish on the broker can update it." },
      "insecure: no key"),
      el("dl", {},
        el("dt", {}, "Last seen"), el("dd", { "data-field": "last_seen" }),
        el("dt", {}, "Uptime"), el("dd", { "data-field": "uptime" }),
        el("dt", {}, "Boot count"), el("dd", { "data-field": "boot" }),
        el("dt", {}, "Free memory"), el("dd", { "data-field": "mem_free" }),
        el("dt", {}, "Firmware"), el("dd", { "data-field": "fw" }),
        el("dt", {}, "MicroPython"), el("dd", { "data-field": "runs" })),
      el("details", {}, el("summary", {}, "Files"), el("ul", { class: "files", "data-field": "files" })),
      el("div", { class: "plugins", "data-field": "plugins" }),
      el("p", { class: "drop-status", "data-field": "drop", "aria-live": "polite" }),
      el("p", {}, el("a", { href: pushUrl.pathname + pushUrl.search }, "Push a file to " + name)),
      el("form", { method: "post", class: "forget", "data-field": "forget", hidden: true,
        action: root.dataset.forgetUrl.replace("NAME", encodeURIComponent(name)),
        "data-confirm": `Forget ${name}? Its record and its key go; its push history stays.` },
      el("input", { type: "hidden", name: "csrf_token",
        value: document.querySelector('meta[name="csrf-token"]').content }),
      el("button", { type: "submit", class: "danger" }, "Forget " + name)));
    root.append(c);
    document.getElementById("devices-empty").hidden = true;
    return c;
  }

  // The same form as the page's: a delete is a push of its own, and the files the board needs
  // to boot or stay reachable ask for "I know" first.
  const guarded = new Set((root.dataset.guarded || "").split(" "));
  function deleteForm(device, name) {
    const token = document.querySelector('meta[name="csrf-token"]').content;
    return el("form", { method: "post", class: "delete-file",
      action: root.dataset.deleteUrl.replace("NAME", encodeURIComponent(device)),
      "data-confirm": `Delete ${name} on ${device}? A rollback would put it back.` },
    el("input", { type: "hidden", name: "csrf_token", value: token }),
    el("input", { type: "hidden", name: "name", value: name }),
    guarded.has(name) ? el("label", { title: "The board needs it to boot or to stay reachable" },
      el("input", { type: "checkbox", name: "force", value: "yes", required: true }), " I know") : "",
    el("button", { type: "submit", class: "danger", "aria-label": `Delete ${name} on ${device}` },
      "Delete"));
  }

  function field(c, name) {
    return c.querySelector(`[data-field="${name}"]`);
  }

  function render(d) {
    const c = card(d.name);
    c.classList.toggle("online", d.online);
    c.classList.toggle("offline", !d.online);
    field(c, "state").textContent = d.online ? "online" : "offline";
    field(c, "insecure").hidden = d.secure;
    field(c, "probation").hidden = !(d.online && d.probation);
    field(c, "forget").hidden = d.online; // only a device that is gone can be forgotten
    lastSeen.set(d.name, [d.last_seen, d.note]);
    field(c, "uptime").textContent = duration(d.uptime);
    field(c, "boot").textContent = d.boot === null ? "–" : String(d.boot);
    field(c, "mem_free").textContent = size(d.mem_free);
    field(c, "fw").textContent = d.fw || "–";
    field(c, "runs").textContent = d.runs || "–";
    // The file list is rebuilt only when a file changed: text selected in it survives the poll.
    const files = Object.keys(d.files).sort();
    const list = field(c, "files");
    const key = files.map((n) => `${n} ${d.files[n]}`).join("\n");
    if (shownFiles.get(list) !== key) {
      shownFiles.set(list, key);
      c.querySelector("summary").textContent = `Files (${files.length})`;
      list.replaceChildren(...files.map((n) => el("li", {}, el("code", {}, n), " ",
        el("span", { class: "hash" }, d.files[n].slice(0, 10)), deleteForm(d.name, n))));
    }
    plugins(field(c, "plugins"), d.plugins);
    tickAges();
  }

  // The controls are rebuilt only when the plugins, their keys or the kind of a value change.
  // A new state is written into the nodes already there: the poll brings a device about once
  // a second, and a rebuilt switch would drop keyboard focus, lose a click and be announced
  // again by a screen reader.
  function plugins(box, all) {
    const names = Object.keys(all).sort();
    const wanted = names.map((p) => [p, Object.keys(all[p]).sort().map((k) =>
      [k, typeof all[p][k] === "boolean"])]);
    const shown = [...box.children].map((f) => [f.dataset.plugin,
      [...f.querySelectorAll("[data-key]")].map((n) => [n.dataset.key, n.matches(".switch")])]);
    if (JSON.stringify(shown) !== JSON.stringify(wanted)) {
      box.replaceChildren(...names.map((p) => plugin(p, all[p])));
    }
    for (const node of box.querySelectorAll("[data-key]")) {
      const { plugin: p, key } = node.dataset;
      const v = all[p][key];
      if (node.matches(".switch")) {
        if (node.getAttribute("aria-checked") === String(v)) continue;
        node.setAttribute("aria-checked", String(v));
        node.removeAttribute("aria-busy"); // the device answered
      } else {
        const text = `${key}: ${typeof v === "string" ? v : JSON.stringify(v)}`;
        if (node.textContent !== text) node.textContent = text;
      }
    }
  }

  // One plugin's controls, still without values: plugins() writes them in.
  function plugin(name, state) {
    return el("fieldset", { class: "plugin", "data-plugin": name }, el("legend", {}, name),
      ...Object.keys(state).sort().map((key) => typeof state[key] === "boolean"
        ? el("button", { type: "button", class: "switch", role: "switch",
          "data-plugin": name, "data-key": key }, key)
        : el("span", { class: "state", "data-plugin": name, "data-key": key })));
  }

  function tickAges() {
    for (const [name, [ts, note]] of lastSeen) {
      const c = card(name);
      field(c, "last_seen").textContent = ago(ts) + (note ? ` (${note})` : "");
    }
  }

  root.addEventListener("click", async (ev) => {
    const sw = ev.target.closest("button.switch");
    if (!sw) return;
    const device = sw.closest("[data-device]").dataset.device;
    const url = root.dataset.commandUrl.replace("NAME", encodeURIComponent(device))
      .replace("PLUGIN", encodeURIComponent(sw.dataset.plugin));
    // Busy until the device reports a new state (plugins() clears it), PENDING_MS at most.
    sw.setAttribute("aria-busy", "true");
    sw.removeAttribute("title");
    clearTimeout(pending.get(sw));
    pending.set(sw, setTimeout(() => sw.removeAttribute("aria-busy"), PENDING_MS));
    try {
      await send(url, "POST", { [sw.dataset.key]: sw.getAttribute("aria-checked") !== "true" });
    } catch (err) {
      sw.removeAttribute("aria-busy");
      sw.title = "not sent: " + err.message;
    }
  });

  // Drop a file on a card: store it, push it to that device, follow it on its timeline.
  async function dropOn(c, file) {
    const status = field(c, "drop");
    try {
      status.textContent = `uploading ${file.name}…`;
      const form = new FormData();
      form.append("file", file, file.name);
      const r = await fetch(root.dataset.uploadUrl, {
        method: "POST", body: form, headers: csrfHeaders({ Accept: "application/json" }) });
      const stored = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(stored.message || "HTTP " + r.status);
      status.textContent = `pushing ${file.name}…`;
      const pushed = await send(root.dataset.pushesUrl, "POST",
        { file: stored.files[0].sha256, devices: [c.dataset.device] });
      location.assign(root.dataset.timelineUrl.replace("IDS", pushed.pushes.join(",")));
    } catch (err) {
      status.textContent = `not pushed: ${err.message}`;
    }
  }

  root.addEventListener("dragover", (e) => {
    const c = e.target.closest("[data-device]");
    if (!c) return;
    e.preventDefault();
    c.classList.add("over");
  });
  root.addEventListener("dragleave", (e) => {
    const c = e.target.closest("[data-device]");
    if (c && !c.contains(e.relatedTarget)) c.classList.remove("over");
  });
  root.addEventListener("drop", (e) => {
    const c = e.target.closest("[data-device]");
    if (!c) return;
    e.preventDefault();
    c.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length === 1) dropOn(c, e.dataTransfer.files[0]);
    else field(c, "drop").textContent = "drop one file at a time on a device";
  });

  // a device forgotten in another tab or by a script: its card goes here too
  function forget(name) {
    for (const c of root.querySelectorAll("[data-device]")) {
      if (c.dataset.device === name) c.remove();
    }
  }

  poll(root.dataset.pollUrl, (data) => {
    data.devices.forEach(render);
    (data.forgotten || []).forEach(forget);
  });
  setInterval(tickAges, 1000);
})();
