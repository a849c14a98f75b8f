// Countersign dashboard: live runs table (server-sent events) and the
// receipt's print button. No framework; served with a strict CSP, so no
// inline scripts anywhere. Text from the server is set with textContent only.
"use strict";

(function () {
  document.querySelectorAll("[data-print]").forEach(function (b) {
    b.addEventListener("click", function () { window.print(); });
  });

  var table = document.querySelector("table[data-live]");
  if (!table || !window.EventSource) return;
  var body = table.tBodies[0];
  var firstPage = table.dataset.firstPage === "1";
  var state = document.querySelector("[data-testid=live-state]");

  function setBadge(row, field, value, label, tone) {
    var el = row.querySelector('[data-field="' + field + '"]');
    if (!el) return;
    el.dataset.value = value;
    el.textContent = label;
    el.className = "badge " + tone;
  }

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function badgeCell(field) {
    var td = document.createElement("td");
    var span = document.createElement("span");
    span.dataset.field = field;
    td.appendChild(span);
    return td;
  }

  function newRow(r) {
    var tr = document.createElement("tr");
    tr.dataset.runId = r.run_id;
    var first = document.createElement("td");
    var a = document.createElement("a");
    a.href = r.href;
    var code = document.createElement("code");
    code.textContent = r.run_id;
    a.appendChild(code);
    first.appendChild(a);
    tr.appendChild(first);
    tr.appendChild(cell(r.action));
    tr.appendChild(cell(r.actor));
    tr.appendChild(cell(r.rule));
    tr.appendChild(badgeCell("governance_status"));
    tr.appendChild(badgeCell("execution_status"));
    var age = cell("just now");
    age.title = r.created_at;
    tr.appendChild(age);
    return tr;
  }

  function findRow(id) {
    for (var i = 0; i < body.rows.length; i++) {
      if (body.rows[i].dataset.runId === id) return body.rows[i];
    }
    return null;
  }

  var source = new EventSource(table.dataset.live);
  source.addEventListener("run", function (ev) {
    var msg;
    try { msg = JSON.parse(ev.data); } catch (e) { return; }
    var r = msg.row;
    var row = findRow(r.run_id);
    if (!row) {
      if (!msg.is_new || !msg.matches || !firstPage) return;
      row = newRow(r);
      body.insertBefore(row, body.firstChild);
      var empty = document.querySelector("[data-testid=no-runs]");
      if (empty) empty.remove();
    }
    setBadge(row, "governance_status", r.governance_status, r.governance_label, r.governance_tone);
    setBadge(row, "execution_status", r.execution_status, r.execution_label, r.execution_tone);
    row.classList.remove("changed");
    void row.offsetWidth;
    row.classList.add("changed");
  });
  source.addEventListener("open", function () { if (state) state.textContent = "live updates on"; });
  source.addEventListener("error", function () { if (state) state.textContent = "reconnecting…"; });
})();
