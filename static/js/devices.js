// The devices page: one page of live cards (the view: name, tag, state, sort, page) from
// /api/devices?since=, plugin switches that send a command and then show what the device
// reports back (not what was clicked), tags a person edits, a file dropped on a card pushed.
//
// Work per poll follows what changed, not the fleet: the server answers the view's names
// and only the devices of it that changed; a card is found by name in a Map and only the
// fields whose text changed are written. One ticker ages "last seen" on the cards in sight.
// On a device's own page (data-only) the same script keeps its one card.
"use strict";

(() => {
  const root = document.getElementById("devices");
  if (!root) return;
  const { el, poll, send, csrfHeaders, size, ago, duration } = window.DccLive;
  const only = root.dataset.only || null;
  const filters = document.getElementById("device-filters");
  const PENDING_MS = 5000; // a device answers a command with its new state within a moment
  const pending = new WeakMap(); // switch -> timer that stops waiting for the device
  const shown = new WeakMap(); // a card's list (files, tags) -> the key of what it shows
  const cards = new Map(); // name -> its card on the page
  const known = new Map(); // name -> the device as last sent (files kept when left out)
  const inSight = new Set(); // cards on screen: the only ones the ticker ages
  const sight = new IntersectionObserver((seen) => {
    for (const e of seen) {
      if (e.isIntersecting) {
        inSight.add(e.target);
        age(e.target);
      } else inSight.delete(e.target);
    }
  });
  const token = () => document.querySelector('meta[name="csrf-token"]').content;

  for (const c of root.querySelectorAll("[data-device]")) adopt(c);
  let order = [...cards.keys()]; // the view's names, in order, as the page shows them

  function adopt(c) {
    cards.set(c.dataset.device, c);
    sight.observe(c);
    return c;
  }

  function drop(name) {
    const c = cards.get(name);
    if (!c) return;
    cards.delete(name);
    sight.unobserve(c);
    inSight.delete(c);
    c.remove();
  }

  // The same card as templates/pages/_device_card.html, still without values: render()
  // writes them in.
  function card(name) {
    const pushUrl = new URL(root.dataset.pushUrl, location.href);
    pushUrl.searchParams.set("device", name);
    return adopt(el("article", { class: "card device", "data-device": name },
      el("header", {},
        el("h2", {}, el("a", { href: root.dataset.deviceUrl.replace("NAME", encodeURIComponent(name)) }, name)),
        el("span", { class: "badge", "data-field": "state" }),
        el("span", { class: "badge probation", "data-field": "probation", hidden: true,
          title: "Running an update on probation: it takes no other until it confirms or rolls back." },
        "on probation")),
      el("p", { class: "insecure", "data-field": "insecure", hidden: true,
        title: "It takes unsigned triggers: anyone who can publish on the broker can update it." },
      "insecure: no key"),
      el("ul", { class: "tags", "data-field": "tags", "aria-label": "Tags of " + name }),
      el("dl", {},
        el("dt", {}, "Last seen"), el("dd", { "data-field": "last_seen" }),
        el("dt", {}, "Uptime"), el("dd", { "data-field": "uptime" }),
        el("dt", {}, "Boot count"), el("dd", { "data-field": "boot" }),
        el("dt", {}, "Free memory"), el("dd", { "data-field": "mem_free" }),
        el("dt", {}, "Firmware"), el("dd", { "data-field": "fw" }),
        el("dt", {}, "MicroPython"), el("dd", { "data-field": "runs" }),
        el("div", { class: "release", "data-field": "release-row", hidden: true },
          el("dt", {}, "Release"), el("dd", { "data-field": "release" }))),
      el("details", {}, el("summary", {}, "Files"), el("ul", { class: "files", "data-field": "files" })),
      el("div", { class: "plugins", "data-field": "plugins" }),
      el("p", { class: "drop-status", "data-field": "drop", "aria-live": "polite" }),
      el("details", { class: "edit-tags" }, el("summary", {}, "Edit tags"),
        el("form", { method: "post", class: "tags-form",
          action: root.dataset.tagsUrl.replace("NAME", encodeURIComponent(name)) },
        el("label", {}, `Tags of ${name}, separated by spaces `,
          el("input", { name: "tags", autocomplete: "off" })),
        " ", el("button", { type: "submit" }, "Save tags"), " ",
        el("span", { class: "tags-status", "aria-live": "polite" }))),
      el("p", {}, el("a", { href: pushUrl.pathname + pushUrl.search }, "Push a file to " + name)),
      el("form", { method: "post", class: "forget", "data-field": "forget", hidden: true,
        action: root.dataset.forgetUrl.replace("NAME", encodeURIComponent(name)),
        "data-confirm": `Forget ${name}? Its record and its key go; its push history stays.` },
      el("input", { type: "hidden", name: "csrf_token", value: token() }),
      el("button", { type: "submit", class: "danger" }, "Forget " + name))));
  }

  // The same form as the device page's: a delete is a push of its own, and the files the
  // board needs to boot or stay reachable ask for "I know" first.
  const guarded = new Set((root.dataset.guarded || "").split(" "));
  function deleteForm(device, name) {
    return el("form", { method: "post", class: "delete-file",
      action: root.dataset.deleteUrl.replace("NAME", encodeURIComponent(device)),
      "data-confirm": `Delete ${name} on ${device}? A rollback would put it back.` },
    el("input", { type: "hidden", name: "csrf_token", value: token() }),
    el("input", { type: "hidden", name: "name", value: name }),
    guarded.has(name) ? el("label", { title: "The board needs it to boot or to stay reachable" },
      el("input", { type: "checkbox", name: "force", value: "yes", required: true }), " I know") : "",
    el("button", { type: "submit", class: "danger", "aria-label": `Delete ${name} on ${device}` },
      "Delete"));
  }

  function field(c, name) {
    return c.querySelector(`[data-field="${name}"]`);
  }

  // Writing the same text again still costs the browser a layout: only what changed.
  function text(node, value) {
    if (node.textContent !== value) node.textContent = value;
  }

  function flag(node, attr, on) {
    if (node.hasAttribute(attr) !== on) node.toggleAttribute(attr, on);
  }

  // A list rebuilt only when what it shows changed: text selected in it survives the poll.
  function list(node, key, build) {
    if (shown.get(node) === key) return false;
    shown.set(node, key);
    node.replaceChildren(...build());
    return true;
  }

  function render(c, d) {
    if (c.classList.contains("online") !== d.online) {
      c.classList.toggle("online", d.online);
      c.classList.toggle("offline", !d.online);
    }
    text(field(c, "state"), d.online ? "online" : "offline");
    flag(field(c, "insecure"), "hidden", d.secure);
    flag(field(c, "probation"), "hidden", !(d.online && d.probation));
    flag(field(c, "forget"), "hidden", d.online); // only a device that is gone can be forgotten
    age(c);
    text(field(c, "uptime"), duration(d.uptime));
    text(field(c, "boot"), d.boot === null ? "–" : String(d.boot));
    text(field(c, "mem_free"), size(d.mem_free));
    text(field(c, "fw"), d.fw || "–");
    text(field(c, "runs"), d.runs || "–");
    flag(field(c, "release-row"), "hidden", d.release === undefined || d.release === null);
    text(field(c, "release"), d.release || "–");
    const tags = d.tags || [];
    if (list(field(c, "tags"), tags.join(" "), () => tags.map((t) => el("li", {}, t)))) {
      const input = c.querySelector(".tags-form input[name=tags]");
      if (document.activeElement !== input) input.value = tags.join(" "); // not under typing
    }
    if (d.files) {
      const files = Object.keys(d.files).sort();
      const key = files.map((n) => `${n} ${d.files[n]}`).join("\n");
      if (list(field(c, "files"), key, () => files.map((n) => el("li", {}, el("code", {}, n), " ",
        el("span", { class: "hash" }, d.files[n].slice(0, 10)), deleteForm(d.name, n))))) {
        text(c.querySelector("summary"), `Files (${files.length})`);
      }
    }
    plugins(field(c, "plugins"), d.plugins);
  }

  function age(c) {
    const d = known.get(c.dataset.device);
    if (d) text(field(c, "last_seen"), ago(d.last_seen) + (d.note ? ` (${d.note})` : ""));
  }

  // The controls are rebuilt only when the plugins, their keys or the kind of a value change.
  // A new state is written into the nodes already there: the poll brings a device about once
  // a second, and a rebuilt switch would drop keyboard focus, lose a click and be announced
  // again by a screen reader.
  function plugins(box, all) {
    const names = Object.keys(all).sort();
    const wanted = JSON.stringify(names.map((p) => [p, Object.keys(all[p]).sort().map((k) =>
      [k, typeof all[p][k] === "boolean"])]));
    if (shown.get(box) !== wanted) {
      const before = JSON.stringify([...box.children].map((f) => [f.dataset.plugin,
        [...f.querySelectorAll("[data-key]")].map((n) => [n.dataset.key, n.matches(".switch")])]));
      shown.set(box, wanted);
      if (before !== wanted) box.replaceChildren(...names.map((p) => plugin(p, all[p])));
    }
    for (const node of box.querySelectorAll("[data-key]")) {
      const { plugin: p, key } = node.dataset;
      const v = all[p][key];
      if (node.matches(".switch")) {
        if (node.getAttribute("aria-checked") === String(v)) continue;
        node.setAttribute("aria-checked", String(v));
        node.removeAttribute("aria-busy"); // the device answered
      } else {
        text(node, `${key}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
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

  setInterval(() => inSight.forEach(age), 1000);

  // -- the view: what the filters ask for, the page's cards in its order, the pager ----------

  function viewParams() {
    const p = new URLSearchParams();
    if (only) {
      p.set("q", only); // its name, and those holding it: the others are let be
      p.set("per_page", "200");
    } else {
      for (const [k, v] of new FormData(filters)) if (v) p.set(k, v);
      p.set("page", String(page));
    }
    return p;
  }

  let page = Number(new URLSearchParams(location.search).get("page")) || 1;

  // The view's cards in its order; a card moves only when its place changed (a switch in
  // focus stays focused). Names the page has no data for: ask again without a cursor.
  function arrange(names) {
    if (names.length === order.length && names.every((n, i) => n === order[i])) return true;
    if (names.some((n) => !known.has(n))) return false;
    let at = root.firstElementChild;
    for (const name of names) {
      let c = cards.get(name);
      if (!c) render(c = card(name), known.get(name));
      if (c === at) at = at.nextElementSibling;
      else root.insertBefore(c, at);
    }
    while (at) { // the cards that left the view; what they said goes stale out of it
      const next = at.nextElementSibling;
      known.delete(at.dataset.device);
      drop(at.dataset.device);
      at = next;
    }
    order = names;
    return true;
  }

  function pager(v, counts) {
    const first = (v.page - 1) * v.per_page;
    text(document.getElementById("devices-count"), (v.total ? `Showing ${first + 1}–${first + v.names.length} of ${v.total}`
      : "No device matches") + `; ${counts.devices} in all: ${counts.online} online, ` +
      `${counts.offline} offline, ${counts.probation} on probation.`);
    document.getElementById("devices-empty").hidden = counts.devices > 0;
    page = v.page;
    const link = (n, rel, label) => {
      const u = new URL(location.href);
      u.search = viewParams().toString();
      u.searchParams.set("page", n);
      return el("a", { rel, href: u.pathname + u.search, "data-page": n }, label);
    };
    list(document.getElementById("devices-pager"), `${v.page}/${v.pages}`, () => [
      v.page > 1 ? link(v.page - 1, "prev", "Previous") : "", " ",
      el("span", {}, `Page ${v.page} of ${v.pages}`), " ",
      v.page < v.pages ? link(v.page + 1, "next", "Next") : ""]);
  }

  // The tag filter lists the tags in use, each with its count; the chosen one stays.
  function tagChoices(tags) {
    const select = document.getElementById("device-tag");
    const chosen = select.value;
    const all = Object.assign(chosen ? { [chosen]: 0 } : {}, tags);
    list(select, JSON.stringify(all), () => [el("option", { value: "" }, "any tag"),
      ...Object.keys(all).sort().map((t) => el("option", { value: t, selected: t === chosen },
        `${t} (${all[t]})`))]);
  }

  const live = poll(() => {
    const p = viewParams();
    p.set("files", "changed"); // the file lists a card has stay: most of a heartbeat
    return root.dataset.pollUrl + "?" + p;
  }, (data) => {
    for (const d of data.devices) {
      const before = known.get(d.name);
      if (!d.files && before) d.files = before.files;
      known.set(d.name, d);
    }
    for (const name of data.forgotten || []) {
      known.delete(name);
      drop(name);
    }
    if (!only && data.view) {
      if (!arrange(data.view.names)) {
        live.restart();
        return;
      }
      pager(data.view, data.counts);
      tagChoices(data.tags);
    }
    for (const d of data.devices) {
      const c = cards.get(d.name) || (only === d.name ? root.appendChild(card(d.name)) : null);
      if (c) render(c, known.get(d.name));
    }
  });

  // -- what a person does -----------------------------------------------------------------

  if (filters) {
    let typing = null;
    const apply = () => {
      clearTimeout(typing);
      page = 1;
      const p = viewParams();
      p.delete("page");
      history.replaceState(null, "", "?" + p); // a reload or a link shows the same view
      live.restart();
    };
    filters.addEventListener("submit", (e) => { e.preventDefault(); apply(); });
    filters.addEventListener("change", (e) => { if (e.target.matches("select")) apply(); });
    filters.addEventListener("input", (e) => {
      if (!e.target.matches("input")) return;
      clearTimeout(typing);
      typing = setTimeout(apply, 250);
    });
    document.getElementById("devices-pager").addEventListener("click", (e) => {
      const a = e.target.closest("a[data-page]");
      if (!a) return;
      e.preventDefault();
      page = Number(a.dataset.page);
      history.replaceState(null, "", a.getAttribute("href"));
      live.restart();
    });
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

  // Tags: the API takes the list (the CSRF header as every script sends it); the card shows
  // what the server kept (sorted, each once), and the next poll brings the filter's counts.
  root.addEventListener("submit", async (ev) => {
    const form = ev.target.closest("form.tags-form");
    if (!form) return;
    ev.preventDefault();
    const c = form.closest("[data-device]");
    const status = form.querySelector(".tags-status");
    const tags = form.elements.tags.value.split(/[\s,]+/).filter(Boolean);
    try {
      const saved = await send(root.dataset.tagsUrl.replace("NAME", encodeURIComponent(c.dataset.device)),
        "PUT", { tags });
      const d = known.get(c.dataset.device);
      if (d) render(c, Object.assign(d, { tags: saved.tags }));
      form.elements.tags.value = saved.tags.join(" ");
      status.textContent = "saved";
    } catch (err) {
      status.textContent = "not saved: " + err.message;
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
        // under the name dropped: the same bytes stored before keep their first name
        { file: stored.files[0].sha256, as: file.name, devices: [c.dataset.device] });
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
})();
