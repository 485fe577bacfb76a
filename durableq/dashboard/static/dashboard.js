// durableq dashboard: live refresh by polling, select-all, and confirmations. Our own code,
// no library. Refresh replaces the page's <main> with a fresh copy; it pauses while the tab is
// hidden, while a form field has focus, and while jobs are selected, so nothing is lost.
(function () {
  "use strict";
  var KEY = "durableq.refresh";
  var timer = null;

  function busy() {
    var active = document.activeElement;
    if (active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName) && active.id !== "refresh") return true;
    return document.querySelector("main input[type=checkbox]:checked") !== null;
  }

  function refresh() {
    if (document.hidden || busy()) return;
    fetch(window.location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null || busy()) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("content");
        var main = document.getElementById("content");
        if (fresh && main) { main.innerHTML = fresh.innerHTML; wire(main); }
      })
      .catch(function () { /* the server is away for a moment: try again next tick */ });
  }

  function schedule(seconds) {
    if (timer) clearInterval(timer);
    timer = seconds > 0 ? setInterval(refresh, seconds * 1000) : null;
  }

  function wire(root) {
    root.querySelectorAll("[data-select-all]").forEach(function (box) {
      box.addEventListener("change", function () {
        root.querySelectorAll("input[name=id]").forEach(function (row) { row.checked = box.checked; });
      });
    });
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
    root.querySelectorAll("button[data-confirm-bulk]").forEach(function (button) {
      button.addEventListener("click", function (event) {
        var form = button.form;
        var scope = form.querySelector("select[name=scope]").value;
        var picked = form.querySelectorAll("input[name=id]:checked").length;
        var what = scope === "matching" ? form.querySelector("select[name=scope] option[value=matching]").textContent
                                        : picked + " selected job(s)";
        if (scope === "selected" && picked === 0) { event.preventDefault(); window.alert("Select jobs first."); return; }
        if (!window.confirm(button.value + " " + what + "?")) event.preventDefault();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("refresh");
    var stored = window.localStorage.getItem(KEY);
    var seconds = stored === null ? Number(document.body.getAttribute("data-refresh") || 5) : Number(stored);
    if (select) {
      select.value = String(seconds);
      select.addEventListener("change", function () {
        window.localStorage.setItem(KEY, select.value);
        schedule(Number(select.value));
      });
    }
    schedule(seconds);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
    wire(document);
  });
})();
