// The push form: "select all online", and the device-side name defaulting to the file's name.
"use strict";

(() => {
  const form = document.getElementById("push-form");
  if (!form) return;
  const file = form.querySelector("#file");
  const target = form.querySelector("#target");
  const showName = () => { target.placeholder = file.selectedOptions[0].dataset.name; };
  file.addEventListener("change", showName);
  showName();
  form.querySelector("#select-online").addEventListener("click", () => {
    for (const box of form.querySelectorAll('input[name="device"]')) {
      box.checked = box.dataset.online === "true";
    }
  });
})();
