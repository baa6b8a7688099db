// The review desk, keyboard first: one sequence panel at a time, a decision is one request that
// answers with the next panel. Filters stay in the page's query string and go with every request.
(function () {
  "use strict";
  var seqBox, busy = false, lastDecision = null;

  function csrf() { var m = document.querySelector('meta[name="csrf-token"]'); return m ? m.content : ""; }
  function filters() {
    var p = new URLSearchParams(location.search); p.delete("at"); return p;
  }
  function current() { return seqBox && seqBox.querySelector(".seq"); }
  function flash(text) {
    var el = document.getElementById("flash");
    if (el) { el.textContent = text; setTimeout(function () { if (el.textContent === text) el.textContent = ""; }, 6000); }
  }
  function errorText(r) {
    return r.text().then(function (t) {
      try { return JSON.parse(t).error; } catch (_) { var d = document.createElement("div"); d.innerHTML = t; return d.textContent.trim(); }
    });
  }
  function show(html) {
    seqBox.innerHTML = html;
    var s = current();
    if (s) {
      var p = filters(); p.set("at", s.dataset.seq);
      history.replaceState(null, "", "/review?" + p.toString());
      // Warm the browser's cache with the next sequences' photos, so the next one shows at once.
      seqBox.querySelectorAll('link[rel="prefetch"]').forEach(function (l) { var i = new Image(); i.src = l.href; });
    }
    document.body.dataset.reviewReady = String(Date.now());
  }
  function load(params) {
    if (busy) return;
    busy = true;
    var p = filters(); Object.keys(params).forEach(function (k) { p.set(k, params[k]); });
    fetch("/review/seq?" + p.toString(), {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { return r.ok ? r.text().then(show) : errorText(r).then(flash); })
      .catch(function () { flash("No connection to the Pardus server; try again."); })
      .finally(function () { busy = false; });
  }
  function post(url, body) {
    if (busy) return;
    busy = true;
    fetch(url + "?" + filters().toString(), {method: "POST", credentials: "same-origin",
      headers: {"X-CSRF-Token": csrf(), "Accept": "text/html"}, body: body})
      .then(function (r) {
        if (!r.ok) return errorText(r).then(flash);
        var d = r.headers.get("X-Pardus-Decision"); if (d) lastDecision = d;
        return r.text().then(show);
      })
      .catch(function () { flash("No connection to the Pardus server; try again."); })
      .finally(function () { busy = false; });
  }
  function decide(action, species) {
    var s = current(); if (!s) return;
    var body = new FormData();
    body.set("sequence_id", s.dataset.seq); body.set("action", action);
    if (species) body.set("species", species);
    var count = document.getElementById("count-input");
    if (count && count.value && action !== "blank") body.set("count", count.value);
    if (count) count.value = "";
    post("/review/decide", body);
  }
  function undo() { var body = new FormData(); post("/review/undo", body); }
  function frame(step) {
    var s = current(); if (!s) return;
    var frames = s.querySelectorAll("figure.frame"), thumbs = s.querySelectorAll(".thumb-btn"), i = 0;
    frames.forEach(function (f, k) { if (!f.hidden) i = k; });
    var j = Math.max(0, Math.min(frames.length - 1, i + step));
    select(j);
  }
  function select(j) {
    var s = current(); if (!s) return;
    s.querySelectorAll("figure.frame").forEach(function (f, k) { f.hidden = k !== j; f.classList.toggle("current", k === j); });
    s.querySelectorAll(".thumb-btn").forEach(function (b, k) { b.classList.toggle("current", k === j); });
  }
  function help(open) { var h = document.getElementById("help"); if (h) h.hidden = !open; }

  document.addEventListener("DOMContentLoaded", function () {
    seqBox = document.getElementById("seq");
    if (!seqBox) return;
    show(seqBox.innerHTML);
    seqBox.addEventListener("click", function (e) {
      var b = e.target.closest("[data-action]"); if (b) { decide(b.dataset.action); return; }
      var t = e.target.closest(".thumb-btn"); if (t) { select(parseInt(t.dataset.index, 10)); return; }
      var v = e.target.closest(".seek"); if (v) { var fig = v.closest("figure"); var vid = fig && fig.querySelector("video");
        if (vid) { vid.currentTime = parseFloat(v.dataset.t); vid.play(); } }
    });
    document.querySelectorAll("#species-keys li[data-name]").forEach(function (li) {
      li.addEventListener("click", function () { decide("animal", li.dataset.name); });
    });
    // Enter in the species box decides; Enter in the count box goes back to the keys. (A form with two
    // fields and no button does not submit on Enter, so the keys are handled here.)
    var speciesInput = document.getElementById("species-input");
    if (speciesInput) speciesInput.addEventListener("keydown", function (e) {
      if (e.key !== "Enter") return;
      e.preventDefault();
      var name = speciesInput.value.trim();
      if (name) { decide("animal", name); speciesInput.value = ""; speciesInput.blur(); }
    });
    var countInput = document.getElementById("count-input");
    if (countInput) countInput.addEventListener("keydown", function (e) {
      if (e.key === "Enter") { e.preventDefault(); countInput.blur(); }
    });
    var typeahead = document.getElementById("typeahead");
    if (typeahead) typeahead.addEventListener("submit", function (e) { e.preventDefault(); });
    document.addEventListener("keydown", function (e) {
      var t = e.target;
      var typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT");
      if (e.key === "Escape") { help(false); if (typing) t.blur(); return; }
      if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
      var s = current(), k = e.key;
      var done = true;
      if (k === "?") help(document.getElementById("help").hidden);
      else if (k === "a") decide("accept");
      else if (k === "b") decide("blank");
      else if (k === "p") decide("human");
      else if (k === "v") decide("vehicle");
      else if (k === "u") undo();
      else if (k === "j" || k === "ArrowRight") { if (s && s.dataset.next) load({after: s.dataset.seq}); }
      else if (k === "k" || k === "ArrowLeft") { if (s && s.dataset.prev) load({before: s.dataset.seq}); }
      else if (k === ".") frame(1);
      else if (k === ",") frame(-1);
      else if (k === "z") { if (s) s.classList.toggle("zoomed"); }
      else if (k === "/") { var i = document.getElementById("species-input"); if (i) i.focus(); }
      else if (k === "c") { var c = document.getElementById("count-input"); if (c) c.focus(); }
      else if (k === "x") { if (s && s.dataset.day) location.href = "/review/blanks?camera=" +
        encodeURIComponent(s.dataset.camera) + "&day=" + s.dataset.day; }
      else if (/^[1-9]$/.test(k)) {
        var li = document.querySelector('#species-keys li[data-key="' + k + '"]');
        if (li) decide("animal", li.dataset.name); else done = false;
      } else done = false;
      if (done) e.preventDefault();
    });
  });
})();
