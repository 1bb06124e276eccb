// Forms with data-confirm ask before they submit (deleting a file, for one).
"use strict";

document.addEventListener("submit", (e) => {
  const form = e.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) e.preventDefault();
});
