// The files page: drop files (or pick them), upload each with its own progress bar, then
// refresh the stored list from the server.
"use strict";

(() => {
  const zone = document.getElementById("dropzone");
  if (!zone) return;
  const { el, size, csrfHeaders, refreshPart } = window.DccLive;
  const input = document.getElementById("file-input");
  const list = document.getElementById("uploads");
  const max = Number(zone.dataset.max);
  document.documentElement.classList.add("js");

  function upload(file) {
    const bar = el("progress", { max: file.size || 1, value: 0, "aria-label": "upload of " + file.name });
    const status = el("span", { class: "status" }, "waiting");
    const row = el("li", { class: "upload" }, el("code", {}, file.name), " ", size(file.size), " ", bar, " ", status);
    list.append(row);
    if (file.size > max) {
      row.classList.add("error");
      status.textContent = `too large: the limit is ${size(max)}`;
      return Promise.resolve(false);
    }
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.open("POST", zone.dataset.uploadUrl);
      for (const [k, v] of Object.entries(csrfHeaders({ Accept: "application/json" }))) {
        xhr.setRequestHeader(k, v);
      }
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; }
        status.textContent = "uploading";
      });
      xhr.addEventListener("load", () => {
        let data = {};
        try { data = JSON.parse(xhr.responseText); } catch (e) { /* not JSON: keep {} */ }
        if (xhr.status === 201) {
          bar.value = bar.max;
          row.classList.add("ok");
          status.textContent = "stored, SHA-1 " + data.files[0].sha1;
          resolve(true);
        } else {
          row.classList.add("error");
          status.textContent = data.message || `failed (HTTP ${xhr.status})`;
          resolve(false);
        }
      });
      xhr.addEventListener("error", () => {
        row.classList.add("error");
        status.textContent = "the connection broke; try again";
        resolve(false);
      });
      xhr.send(form);
    });
  }

  async function uploadAll(files) {
    const results = await Promise.all(Array.from(files).map(upload));
    if (results.some(Boolean)) await refreshPart("#stored");
  }

  input.addEventListener("change", () => { uploadAll(input.files); input.value = ""; });
  zone.addEventListener("submit", (e) => { e.preventDefault(); uploadAll(input.files); });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.files.length) uploadAll(e.dataTransfer.files);
  });
})();
