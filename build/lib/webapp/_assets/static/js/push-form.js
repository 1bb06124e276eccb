// The push form: "select all online", and the device-side name, which only a push of one
// file can set (it defaults to that file's own name).
"use strict";

(() => {
  const form = document.getElementById("push-form");
  if (!form) return;
  const target = form.querySelector("#target");
  const files = () => Array.from(form.querySelectorAll('input[name="file"]:checked'));
  function update() {
    const chosen = files();
    target.disabled = chosen.length !== 1;
    target.placeholder = chosen.length === 1 ? chosen[0].dataset.name
      : chosen.length ? `each file keeps its name (${chosen.length} files)` : "choose a file";
  }
  form.querySelector("#files").addEventListener("change", update);
  update();
  form.querySelector("#select-online").addEventListener("click", () => {
    for (const box of form.querySelectorAll('input[name="device"]')) {
      box.checked = box.dataset.online === "true";
    }
  });
})();
