// Countersign dashboard: live runs table (server-sent events), sorting,
// copy buttons and the receipt's print button. No framework; served with a
// strict CSP, so no inline scripts anywhere. Text from the server is set
// with textContent only.
"use strict";

(function () {
  document.querySelectorAll("[data-print]").forEach(function (b) {
    b.addEventListener("click", function () { window.print(); });
  });

  // Copy buttons (run ids): the full value goes to the clipboard.
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("button[data-copy]") : null;
    if (!b) return;
    var text = b.getAttribute("data-copy");
    var done = function () {
      var was = b.textContent;
      b.textContent = "Copied";
      b.dataset.copied = "1";
      setTimeout(function () { b.textContent = was; }, 1500);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () { select(b); });
    } else {
      select(b);
    }
  });
  function select(b) {
    var code = b.parentNode.querySelector("code");
    if (!code) return;
    code.textContent = b.getAttribute("data-copy");
    var range = document.createRange();
    range.selectNodeContents(code);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  // A chart wider than a phone scrolls: start at its right end, today.
  document.querySelectorAll("[data-scroll-end]").forEach(function (box) {
    box.scrollLeft = box.scrollWidth;
  });

  var table = document.querySelector("table.runs");
  if (!table) return;
  var body = table.tBodies[0];

  // Sorting by a column header: click to sort, click again to reverse.
  var heads = table.tHead ? table.tHead.rows[0].cells : [];
  function sortKey(row, index, kind) {
    if (kind === "created") return row.dataset.created || "";
    var c = row.cells[index];
    return c ? c.textContent.trim().toLowerCase() : "";
  }
  Array.prototype.forEach.call(heads, function (th, index) {
    var kind = th.dataset.sort;
    var button = th.querySelector("button.sort");
    if (!kind || !button) return;
    button.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = sortKey(a, index, kind), y = sortKey(b, index, kind);
        var r = x < y ? -1 : x > y ? 1 : 0;
        return asc ? r : -r;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });

  if (!table.dataset.live || !window.EventSource) return;
  var firstPage = table.dataset.firstPage === "1";
  var state = document.querySelector("[data-testid=live-state]");
  var count = document.querySelector("[data-count]");

  function setState(s, text) {
    if (!state) return;
    state.dataset.state = s;
    var t = state.querySelector(".text");
    if (t) t.textContent = text;
  }

  function setBadge(row, field, value, label, tone) {
    var el = row.querySelector('[data-field="' + field + '"]');
    if (!el) return;
    el.dataset.value = value;
    el.textContent = label;
    el.className = "badge " + tone;
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function badge(field) {
    var span = el("span");
    span.dataset.field = field;
    return span;
  }

  // The same cells as templates/ui/run_row.html.
  function newRow(r) {
    var tr = el("tr");
    tr.dataset.runId = r.run_id;
    tr.dataset.created = r.created_at;
    var what = el("td", "what");
    var a = el("a");
    a.href = r.href;
    a.appendChild(el("code", "", r.action));
    what.appendChild(a);
    if (r.title) {
      var t = el("span", "title", r.title);
      t.dataset.testid = "run-title";
      what.appendChild(t);
    }
    tr.appendChild(what);
    var who = el("td", "who", r.actor);
    who.dataset.label = "Actor";
    tr.appendChild(who);
    var status = el("td", "status");
    status.appendChild(badge("governance_status"));
    status.appendChild(document.createTextNode(" "));
    status.appendChild(badge("execution_status"));
    tr.appendChild(status);
    var rule = el("td", "rule", r.rule);
    rule.dataset.label = "Rule";
    tr.appendChild(rule);
    var when = el("td", "when");
    var time = el("time", "", "just now");
    time.setAttribute("datetime", r.created_at);
    time.title = r.created_abs;
    when.appendChild(time);
    when.appendChild(el("span", "muted small nowrap", r.created_abs));
    tr.appendChild(when);
    var id = el("td", "id");
    var code = el("code", "", r.short_id);
    code.title = r.run_id;
    id.appendChild(code);
    var copy = el("button", "copy", "Copy");
    copy.type = "button";
    copy.setAttribute("data-copy", r.run_id);
    copy.title = "Copy the full run id";
    id.appendChild(copy);
    tr.appendChild(id);
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
      if (count) count.textContent = String(body.rows.length);
    }
    setBadge(row, "governance_status", r.governance_status, r.governance_label, r.governance_tone);
    setBadge(row, "execution_status", r.execution_status, r.execution_label, r.execution_tone);
    row.classList.remove("changed");
    void row.offsetWidth;
    row.classList.add("changed");
  });
  source.addEventListener("open", function () { setState("on", "live"); });
  source.addEventListener("error", function () {
    setState("off", source.readyState === 2 ? "live updates off: reload the page" : "reconnecting…");
  });
})();
