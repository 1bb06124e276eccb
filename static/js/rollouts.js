// The rollouts list: each row's phase and progress follow /api/rollouts live (the rollout's
// own page shows its waves and devices).
"use strict";

(() => {
  const table = document.getElementById("rollouts");
  if (!table) return;
  window.DccLive.poll(table.dataset.api, (data) => {
    for (const r of data.rollouts) {
      const row = table.querySelector(`tr[data-rollout="${Number(r.id)}"]`);
      if (!row) continue; // newer than the page: it shows at the next load
      row.className = "state-" + r.state;
      row.querySelector(".badge").textContent = r.state;
      row.querySelector(".reason").textContent = r.reason || "";
      const bar = row.querySelector("progress");
      bar.max = r.total || 1;
      bar.value = r.finished;
      row.querySelector(".count").textContent = `${r.finished} of ${r.total}`;
    }
  });
})();
