// Shared by the pages: live polling with a `since` cursor, a DOM builder that only ever sets
// text (device names and states come from MQTT: anyone on the broker chooses them), and the
// same size and time formats as the server's templates.
"use strict";

window.DccLive = (() => {
  const VISIBLE_MS = 1000;
  const HIDDEN_MS = 10000;

  // Calls onData(json) for url (or what url() says at each request), again and again: about
  // once a second while the page is visible, every 10 s while it is hidden, slower after
  // errors. Each request carries the cursor of the previous answer, so only what changed
  // comes back. restart() asks at once without a cursor (the page wants everything again,
  // e.g. for another view); an answer to a request made before is dropped.
  function poll(url, onData) {
    let cursor = null;
    let timer = null;
    let failures = 0;
    let epoch = 0;
    async function tick() {
      const asked = epoch;
      const u = new URL(typeof url === "function" ? url() : url, location.href);
      if (cursor !== null) u.searchParams.set("since", cursor);
      try {
        const r = await fetch(u, { headers: { Accept: "application/json" } });
        if (!r.ok) throw new Error("HTTP " + r.status);
        const data = await r.json();
        if (asked !== epoch) return; // restarted meanwhile: that tick goes on
        cursor = data.cursor === undefined ? null : data.cursor; // none: all each time
        failures = 0;
        onData(data);
      } catch {
        if (asked !== epoch) return;
        failures = Math.min(failures + 1, 5); // slower after errors, until one succeeds
      }
      schedule();
    }
    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(tick, (document.hidden ? HIDDEN_MS : VISIBLE_MS) * (1 + failures));
    }
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) { clearTimeout(timer); tick(); }
    });
    tick();
    return {
      restart() {
        epoch += 1;
        cursor = null;
        clearTimeout(timer);
        tick();
      },
    };
  }

  // el("li", {class: "x"}, "text", child) -> element. Strings become text nodes, never HTML.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(typeof c === "string" || typeof c === "number" ? String(c) : c);
    }
    return node;
  }

  // Every state-changing request carries the page's CSRF token.
  function csrfHeaders(extra) {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return Object.assign({ "X-CSRFToken": meta ? meta.content : "" }, extra);
  }

  async function send(url, method, body) {
    const r = await fetch(url, {
      method,
      headers: csrfHeaders({ "Content-Type": "application/json", Accept: "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = r.status === 204 ? {} : await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.message || "HTTP " + r.status);
    return data;
  }

  // Fetch this page again and take its part `selector` from it: one template renders it.
  async function refreshPart(selector) {
    const r = await fetch(location.href, { headers: { Accept: "text/html" } });
    const doc = new DOMParser().parseFromString(await r.text(), "text/html");
    document.querySelector(selector).replaceWith(doc.querySelector(selector));
  }

  function size(n) {
    if (n === null || n === undefined) return "–";
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  function ago(ts) {
    if (!ts) return "never";
    const s = Math.max(0, Math.floor(Date.now() / 1000 - ts));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " days ago";
  }

  function duration(s) {
    if (s === null || s === undefined) return "–";
    s = Math.floor(s);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  function clock(ts) {
    const d = new Date(ts * 1000);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
      `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  function elapsed(s) {
    return s < 1 ? `+${Math.round(s * 1000)} ms` : `+${s.toFixed(2)} s`;
  }

  return { poll, el, send, csrfHeaders, refreshPart, size, ago, duration, clock, elapsed };
})();
