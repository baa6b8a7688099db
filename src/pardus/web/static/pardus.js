// Pardus pages: the live alert inbox (Server-Sent Events), htmx error messages, the Leaflet maps.
// Plain script, no build step; every file it needs is served by Pardus itself.
(function () {
  "use strict";

  function flash(text) {
    var el = document.getElementById("flash");
    if (el) { el.textContent = text; setTimeout(function () { if (el.textContent === text) el.textContent = ""; }, 8000); }
  }

  // htmx swaps nothing on an error answer by default: show the server's message instead.
  document.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr, text = "";
    try { text = JSON.parse(xhr.responseText).error; } catch (_) {
      var d = document.createElement("div"); d.innerHTML = xhr.responseText; text = d.textContent.trim();
    }
    flash(text || ("The server answered " + xhr.status));
  });
  document.addEventListener("htmx:sendError", function () { flash("No connection to the Pardus server; try again."); });

  // The inbox listens to the alert stream; any event refreshes the list with the filters as set.
  function listen() {
    var rows = document.getElementById("alert-rows");
    if (!rows || !window.EventSource) return;
    var badge = document.getElementById("live-state");
    var es = new EventSource("/api/v1/alerts/stream");
    var pending = null;
    es.onopen = function () { if (badge) { badge.textContent = "live"; badge.classList.remove("off"); } };
    es.onerror = function () { if (badge) { badge.textContent = "reconnecting"; badge.classList.add("off"); } };
    es.onmessage = refresh;
    ["created", "sighting", "acknowledged", "resolved", "delivery"].forEach(function (k) { es.addEventListener(k, refresh); });
    function refresh() {
      if (pending) return;  // a burst of events is one refresh
      pending = setTimeout(function () { pending = null; htmx.trigger(document.body, "pardus:alerts"); }, 150);
    }
  }

  var COLOURS = {offline: "#c0392b", tampered: "#e67e22", warning: "#f1c40f", ok: "#27ae60", card: "#2980b9", ended: "#95a5a6"};

  function baseMap(el, tiles) {
    var map = L.map(el, {attributionControl: !!tiles});
    if (tiles) L.tileLayer(tiles, {maxZoom: 18}).addTo(map);  // only when the park configured a tile server
    L.control.scale({imperial: false}).addTo(map);
    return map;
  }

  function cameraMap() {
    var el = document.getElementById("map");
    if (!el || !window.L) return;
    var map = baseMap(el, el.dataset.tiles);
    fetch("/api/v1/map/stations", {credentials: "same-origin"}).then(function (r) {
      if (!r.ok) throw new Error("the server answered " + r.status);
      return r.json();
    }).then(function (data) {
      // The view first: Leaflet draws a layer (and makes its element) only on a map that has one.
      var bounds = data.stations.map(function (s) { return [s.latitude, s.longitude]; });
      if (bounds.length) map.fitBounds(bounds, {padding: [30, 30], maxZoom: 14}); else map.setView([43.1, 131.3], 9);
      Object.keys(data.plots).forEach(function (plot) {
        var pts = data.plots[plot];
        if (pts.length >= 3) L.polygon(pts, {color: "#20362a", weight: 1.5, fillOpacity: 0.05, interactive: false}).addTo(map);
        if (pts.length) L.tooltip({permanent: true, direction: "center", className: "plot-label"})
          .setLatLng(pts[0]).setContent(plot).addTo(map);
      });
      data.stations.forEach(function (s) {
        var m = L.circleMarker([s.latitude, s.longitude], {radius: 8, color: "#222", weight: 1,
          fillColor: COLOURS[s.state] || "#999", fillOpacity: 0.9});
        m.bindTooltip(s.id + " · " + s.state);
        m.on("click", function () { htmx.ajax("GET", "/map/stations/" + encodeURIComponent(s.id), "#station"); });
        m.addTo(map);
        var el = m.getElement();
        if (el) { el.setAttribute("data-station", s.id); el.setAttribute("data-state", s.state); }
      });
      var count = document.getElementById("map-count");
      if (count) count.textContent = data.stations.length + " camera stations on the map" +
        (el.dataset.tiles ? "." : " (no tile server configured: plain background; PARDUS_MAP_TILES sets one).");
      el.setAttribute("data-loaded", String(data.stations.length));
    }).catch(function (e) { flash("The camera map could not load: " + e.message); });
  }

  function miniMap() {
    var el = document.getElementById("minimap");
    if (!el || !window.L) return;
    var ll = [parseFloat(el.dataset.lat), parseFloat(el.dataset.lon)];
    var map = baseMap(el, el.dataset.tiles);
    map.setView(ll, 12);
    L.circleMarker(ll, {radius: 8, color: "#222", weight: 1, fillColor: "#c0392b", fillOpacity: 0.9}).addTo(map);
  }

  // An individual's sightings: each a point (rounded places as the server sent them), the plots'
  // outlines from the camera stations, a scale bar; no tiles unless the park configured a server.
  function sightingsMap() {
    var el = document.getElementById("sightings-map"), src = document.getElementById("sightings-data");
    if (!el || !src || !window.L) return;
    var data = JSON.parse(src.textContent), map = baseMap(el, el.dataset.tiles);
    var pts = data.points.map(function (p) { return [p.lat, p.lon]; });
    if (pts.length) map.fitBounds(pts, {padding: [30, 30], maxZoom: 13}); else map.setView([43.1, 131.3], 9);
    Object.keys(data.plots).forEach(function (plot) {
      var o = data.plots[plot];
      if (o.length >= 3) L.polygon(o, {color: "#20362a", weight: 1.5, fillOpacity: 0.05, interactive: false}).addTo(map);
    });
    data.points.forEach(function (p) {
      L.circleMarker([p.lat, p.lon], {radius: 7, color: "#222", weight: 1, fillColor: "#e8c547", fillOpacity: 0.9})
        .bindTooltip(p.place + (p.when ? " · " + p.when.slice(0, 16).replace("T", " ") : "")).addTo(map);
    });
    el.setAttribute("data-loaded", String(data.points.length));
  }

  document.addEventListener("DOMContentLoaded", function () { listen(); cameraMap(); miniMap(); sightingsMap(); });
})();
