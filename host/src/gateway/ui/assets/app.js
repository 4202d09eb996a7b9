// plughost operator page: the only script. Live calls over Server-Sent Events on the calls view; nothing else
// needs JavaScript (every view is server-rendered and works without it).
"use strict";
(function () {
  const table = document.getElementById("calls");
  if (!table || !window.EventSource) return;
  const body = table.tBodies[0];
  const status = document.getElementById("live-status");
  const limit = Number(table.dataset.limit || 100);
  const url = "/ui/calls/live?" + (table.dataset.filter || "") + "&after=" + encodeURIComponent(table.dataset.head || "0");
  const source = new EventSource(url);
  const cell = (row, text, cls) => {
    const td = row.insertCell(-1);
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  };
  source.addEventListener("call", (ev) => {
    const c = JSON.parse(ev.data);
    const row = body.insertRow(0);
    row.className = "new";
    row.dataset.seq = c.seq;
    const th = document.createElement("th");
    th.scope = "row";
    const a = document.createElement("a");
    a.href = "/ui/calls/" + c.seq;
    a.textContent = c.seq;
    th.appendChild(a);
    row.appendChild(th);
    cell(row, c.time);
    cell(row, c.plugin + "/" + c.tool);
    cell(row, c.caller);
    cell(row, c.outcome, "outcome " + (c.outcome === "ok" ? "ok" : "error"));
    cell(row, c.fuel, "n fuel");
    cell(row, c.memory, "n");
    cell(row, c.wall, "n");
    while (body.rows.length > limit) body.deleteRow(-1);
    const empty = document.getElementById("no-calls");
    if (empty) empty.remove();
  });
  source.addEventListener("open", () => { if (status) status.textContent = "Live: new calls appear at the top."; });
  source.addEventListener("error", () => { if (status) status.textContent = "Live updates paused; retrying."; });
})();
