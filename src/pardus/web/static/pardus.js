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
      telemetryLayers(map, el, bounds.length > 0);
    }).catch(function (e) { flash("The camera map could not load: " + e.message); });
  }

  // Text for a tooltip or popup as a DOM node: ids, names and units come from files and sensors,
  // so they are never put into HTML as markup.
  function textNode(tag, text) { var n = document.createElement(tag); n.textContent = text; return n; }
  function day(t) { return new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC"; }
  var TRACK_COLOURS = ["#8e44ad", "#d35400", "#16a085", "#2c3e50", "#c0392b", "#7f8c8d", "#b7950b", "#1f618d"];

  // One tag's track on a map: the line through its fixes up to the slider's instant and a dot at
  // the last of them (where the animal was then). Returns a function that redraws it for a cutoff.
  function trackLayer(group, tr, i) {
    var colour = TRACK_COLOURS[i % TRACK_COLOURS.length];
    var line = L.polyline([], {color: colour, weight: 2, opacity: 0.8}).addTo(group);
    var end = L.circleMarker([0, 0], {radius: 5, color: "#222", weight: 1, fillColor: colour, fillOpacity: 1});
    var who = (tr.individual ? tr.individual + " · " : "") + "collar " + tr.tag_id + (tr.animal ? " (" + tr.animal + ")" : "");
    line.bindTooltip(textNode("span", who + " · " + tr.fixes + " fixes" + (tr.rounded ? " · rounded to 0.1°" : "") +
      (tr.thinned_every > 1 ? " · every " + tr.thinned_every + "th drawn" : "")));
    end.bindTooltip(textNode("span", who));
    function draw(cutoff) {
      var shown = tr.points.filter(function (p) { return p[2] <= cutoff; });
      line.setLatLngs(shown.map(function (p) { return [p[0], p[1]]; }));
      var le = line.getElement();
      if (le) { le.setAttribute("data-track", tr.tag_id); le.setAttribute("data-points", String(shown.length)); }
      if (shown.length) {
        var last = shown[shown.length - 1];
        end.setLatLng([last[0], last[1]]);
        if (!group.hasLayer(end)) end.addTo(group);
        var ee = end.getElement();
        if (ee) ee.setAttribute("data-track-end", tr.tag_id);
      } else if (group.hasLayer(end)) group.removeLayer(end);
      return shown.length;
    }
    return draw;
  }

  // Tracks, fire hotspots and sensors beside the cameras, with a time slider: everything timed after
  // the slider's instant is hidden. The numbers shown are kept on the map element for tests and
  // screen readers (data-track-points, data-hotspots).
  function telemetryLayers(map, el, placed) {
    fetch("/api/v1/map/layers", {credentials: "same-origin"}).then(function (r) {
      if (!r.ok) throw new Error("the server answered " + r.status);
      return r.json();
    }).then(function (data) {
      var tracks = L.layerGroup().addTo(map), hot = L.layerGroup().addTo(map), sensors = L.layerGroup().addTo(map);
      var extent = [];
      var draws = data.tracks.map(function (tr, i) {
        tr.points.forEach(function (p) { extent.push([p[0], p[1]]); });
        return trackLayer(tracks, tr, i);
      });
      var hotMarkers = data.hotspots.map(function (h) {
        extent.push([h.latitude, h.longitude]);
        var m = L.circleMarker([h.latitude, h.longitude], {radius: 5, color: "#7b241c", weight: 1,
          fillColor: h.in_park ? "#e74c3c" : "#f5b041", fillOpacity: 0.9});
        m.bindTooltip(textNode("span", "fire hotspot · " + h.instrument + (h.satellite ? " " + h.satellite : "") + " · " +
          day(h.time) + (h.confidence ? " · confidence " + h.confidence : "") + (h.frp != null ? " · " + h.frp + " MW" : "")));
        return {m: m, t: h.time};
      });
      data.sensors.forEach(function (x) {
        extent.push([x.latitude, x.longitude]);
        var m = L.circleMarker([x.latitude, x.longitude], {radius: 7, color: "#1b4f72", weight: 2, fillColor: "#5dade2", fillOpacity: 0.9});
        var box = document.createElement("div");
        var a = textNode("a", x.id + (x.name ? " · " + x.name : "") + " (" + x.kind + ")");
        a.href = "/sensors/" + encodeURIComponent(x.id);
        box.appendChild(a);
        Object.keys(x.latest).forEach(function (k) {
          var v = x.latest[k];
          box.appendChild(textNode("div", k + ": " + (v.value == null ? "text" : v.value) + (v.unit ? " " + v.unit : "") +
            " at " + v.time.slice(0, 16).replace("T", " ")));
          var img = document.createElement("img");
          img.src = "/sensors/" + encodeURIComponent(x.id) + "/plot.svg?days=2&kind=" + encodeURIComponent(k);
          img.alt = k + " over the last two days of readings";
          img.width = 300;
          box.appendChild(img);
        });
        m.bindPopup(box, {maxWidth: 320});
        m.bindTooltip(textNode("span", "sensor " + x.id + " · " + x.kind));
        m.addTo(sensors);
        var me = m.getElement();
        if (me) me.setAttribute("data-sensor", x.id);
      });
      L.control.layers(null, {"Collar tracks": tracks, "Fire hotspots": hot, "Sensors": sensors}, {collapsed: false}).addTo(map);
      if (!placed && extent.length) map.fitBounds(extent, {padding: [30, 30], maxZoom: 13});
      el.setAttribute("data-sensors", String(data.sensors.length));
      var slider = document.getElementById("map-time"), label = document.getElementById("map-time-label");
      function apply(cutoff) {
        var pts = 0, shown = 0;
        draws.forEach(function (d) { pts += d(cutoff); });
        hotMarkers.forEach(function (h) {
          if (h.t <= cutoff) {
            if (!hot.hasLayer(h.m)) { h.m.addTo(hot); var he = h.m.getElement(); if (he) he.setAttribute("data-hotspot", String(h.t)); }
            shown += 1;
          } else if (hot.hasLayer(h.m)) hot.removeLayer(h.m);
        });
        el.setAttribute("data-track-points", String(pts));
        el.setAttribute("data-hotspots", String(shown));
        if (label) label.textContent = !data.span ? "nothing timed on the map" :
          "up to " + day(Math.min(cutoff, data.span[1])) + (cutoff >= data.span[1] ? " (everything)" : "");
      }
      if (slider && data.span) {
        slider.min = String(data.span[0]);
        slider.max = String(data.span[1]);
        slider.step = "60";  // a minute: fixes and passes fall on whole minutes, so none is skipped over
        slider.value = String(data.span[1]);
        slider.disabled = false;
        slider.addEventListener("input", function () { apply(Number(slider.value) >= data.span[1] ? Infinity : Number(slider.value)); });
      }
      apply(Infinity);
      var note = document.getElementById("layers-note");
      if (note) note.textContent = data.tracks.length + " collar tracks, " + data.hotspots.length + " fire hotspots" +
        (data.hotspots_left_out ? " (the newest; " + data.hotspots_left_out + " older left out)" : "") + ", " +
        data.sensors.length + " sensors" + (data.tracks.some(function (t) { return t.rounded; }) ?
        ". Collar positions are rounded to 0.1° for your role." : ".");
      el.setAttribute("data-layers", "1");
    }).catch(function (e) { flash("The map's tracks, hotspots and sensors could not load: " + e.message); });
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
    if (el.dataset.code) individualTrack(map, el, pts);
  }

  // The individual's collar track(s) beside its camera sightings, when a tag is linked.
  function individualTrack(map, el, sightings) {
    fetch("/api/v1/individuals/" + encodeURIComponent(el.dataset.code) + "/track", {credentials: "same-origin"}).then(function (r) {
      if (!r.ok) throw new Error("the server answered " + r.status);
      return r.json();
    }).then(function (data) {
      var note = document.getElementById("track-note"), all = sightings.slice(), fixes = 0;
      var group = L.layerGroup().addTo(map);
      data.tracks.forEach(function (tr, i) {
        trackLayer(group, tr, i)(Infinity);
        fixes += tr.fixes;
        tr.points.forEach(function (p) { all.push([p[0], p[1]]); });
      });
      if (all.length) map.fitBounds(all, {padding: [30, 30], maxZoom: 13});
      if (note) note.textContent = data.tracks.length ? "Collar track" + (data.tracks.length > 1 ? "s " : " ") +
        data.tracks.map(function (t) { return t.tag_id; }).join(", ") + ": " + fixes + " fixes" +
        (data.tracks.some(function (t) { return t.rounded; }) ? ", rounded to 0.1° for your role" : "") +
        " (line), beside the camera sightings (yellow)." : "";
      el.setAttribute("data-tracks", String(data.tracks.length));
    }).catch(function (e) { flash("The collar track could not load: " + e.message); });
  }

  document.addEventListener("DOMContentLoaded", function () { listen(); cameraMap(); miniMap(); sightingsMap(); });
})();
