// The releases page: drop a folder (walked with webkitGetAsEntry) or choose one, then post its
// files to the API with one `path` each (the file's path inside the folder); the API's
// message is shown when it makes no release, and the list is fetched again when it does.
"use strict";

(() => {
  const zone = document.getElementById("release-zone");
  if (!zone) return;
  const { el, size, csrfHeaders, refreshPart } = window.DccLive;
  const input = document.getElementById("folder-input");
  const list = document.getElementById("release-files");
  const name = document.getElementById("release-name");
  const status = document.getElementById("release-status");
  document.documentElement.classList.add("js");
  let chosen = []; // [{file, path}]

  function say(text, ok) {
    status.textContent = text;
    status.className = "release-status " + (ok ? "ok" : "error");
  }

  // Left out as `ota release create` leaves them out: hidden files and folders (.git,
  // .DS_Store) and Python's __pycache__.
  function kept({ path }) {
    return !path.split("/").some((part) => part.startsWith(".") || part === "__pycache__");
  }

  function show(files) {
    chosen = files.filter(kept).sort((a, b) => a.path.localeCompare(b.path));
    list.replaceChildren(...chosen.map(({ file, path }) =>
      el("li", { class: "upload" }, el("code", {}, path), " ", size(file.size))));
    const tops = new Set(chosen.map(({ path }) => path.split("/")[0]));
    if (!name.value && tops.size === 1 && chosen.every(({ path }) => path.includes("/"))) {
      name.value = [...tops][0]; // the folder's own name
    }
    say(chosen.length ? `${chosen.length} file(s) chosen.` : "The folder is empty.", chosen.length);
  }

  function entries(reader) {
    return new Promise((resolve, reject) => {
      const out = [];
      const next = () => reader.readEntries((batch) => {
        if (!batch.length) { resolve(out); return; }
        out.push(...batch);
        next(); // readEntries gives at most 100 at a time
      }, reject);
      next();
    });
  }

  async function walk(entry) {
    if (entry instanceof File) return [{ file: entry, path: entry.name }];
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      return [{ file, path: entry.fullPath.replace(/^\/+/, "") }];
    }
    const found = await Promise.all((await entries(entry.createReader())).map(walk));
    return found.flat();
  }

  async function send() {
    if (!chosen.length) { say("Drop a folder or choose one first.", false); return; }
    const form = new FormData();
    form.append("name", name.value.trim());
    if (zone.querySelector("#delete-extra").checked) form.append("delete_extra", "yes");
    for (const { file, path } of chosen) {
      form.append("file", file, path.split("/").pop());
      form.append("path", path);
    }
    say("Uploading…", true);
    let r;
    try {
      r = await fetch(zone.dataset.apiUrl, { method: "POST", body: form,
        headers: csrfHeaders({ Accept: "application/json" }) });
    } catch {
      say("The connection broke; try again.", false);
      return;
    }
    const data = await r.json().catch(() => ({}));
    if (r.status !== 201) {
      say(data.message || `failed (HTTP ${r.status})`, false);
      return;
    }
    say(`Made release ${data.name}: ${data.files.length} file(s).`, true);
    chosen = [];
    list.replaceChildren();
    name.value = "";
    await refreshPart("#releases");
  }

  input.addEventListener("change", () => {
    show(Array.from(input.files, (file) => ({ file, path: file.webkitRelativePath || file.name })));
    input.value = "";
  });
  zone.addEventListener("submit", (e) => { e.preventDefault(); send(); });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    // the entries are taken while the event lasts: the DataTransfer empties after it
    const items = Array.from(e.dataTransfer ? e.dataTransfer.items : [])
      .filter((i) => i.kind === "file")
      .map((i) => (i.webkitGetAsEntry && i.webkitGetAsEntry()) || i.getAsFile());
    try {
      show((await Promise.all(items.filter(Boolean).map(walk))).flat());
    } catch (err) {
      say("The folder could not be read: " + err.message, false);
    }
  });
})();
