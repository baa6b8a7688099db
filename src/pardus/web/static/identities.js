// The identity desk by keyboard: 1-5 confirm a candidate, r rejects, n opens "new individual",
// e ticks "the whole encounter", j/k walk the queue, ? shows the keys. Every key clicks the
// element marked data-key="..." on the page, so a key does exactly what its button does.
(function () {
  "use strict";

  function open(id) {
    var d = document.getElementById(id);
    if (!d) return;
    if (d.showModal) { if (!d.open) d.showModal(); } else d.setAttribute("open", "");
    var first = d.querySelector("input,select,button");
    if (first) first.focus();
  }

  document.addEventListener("click", function (e) {
    var t = e.target.closest("[data-dialog]");
    if (t) { e.preventDefault(); open(t.getAttribute("data-dialog")); return; }
    var c = e.target.closest("[data-close]");
    if (c) { var d = c.closest("dialog"); if (d) d.close(); }
  });

  // An ID sheet with problems is answered 422 with the list of problems by row: show it where
  // the summary would go (htmx swaps nothing on an error answer by default).
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (e.detail.xhr.status === 422 && e.detail.target && e.detail.target.id === "import-result") {
      e.detail.shouldSwap = true;
      e.detail.isError = false;
    }
  });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var dialog = e.target.closest && e.target.closest("dialog");
    if (dialog && e.key === "Enter" && dialog.id === "new-dialog" && e.target.tagName !== "BUTTON") {
      // Enter in the new-individual form creates it (not the form's first button, which confirms #1).
      e.preventDefault();
      document.getElementById("new-submit").click();
      return;
    }
    // Typing in a field is typing; an open dialog takes its own keys. (Focus may stay on a button of
    // a dialog just closed, so "inside a dialog" alone must not swallow the keys.)
    if (e.target.closest && e.target.closest("input,textarea,select,[contenteditable]")) return;
    if (document.querySelector("dialog[open]")) return;
    var key = e.key;
    var el = null;
    document.querySelectorAll("[data-key]").forEach(function (x) { if (!el && x.getAttribute("data-key") === key) el = x; });
    if (!el) return;
    e.preventDefault();
    if (el.disabled) return;
    document.body.classList.add("busy");
    el.click();
    if (el.tagName === "INPUT" || el.hasAttribute("data-dialog")) document.body.classList.remove("busy");
  });
})();
