/*
 * Helpers shared by Barrio's map pages (the public map and the planner map).
 * Loaded before each page's own script; exposes window.BarrioMap.
 */
(function (global) {
  "use strict";

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  /* Django-style "%(name)s" placeholders, as in the translated labels. */
  function format(template, values) {
    return String(template).replace(/%\((\w+)\)s/g, function (match, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : match;
    });
  }

  function getJSON(url, signal) {
    return fetch(url, {
      headers: { Accept: "application/json, application/geo+json" },
      credentials: "same-origin",
      signal: signal,
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("HTTP " + response.status + " for " + url);
      }
      return response.json();
    });
  }

  function apiZoom(map, maxZoom) {
    return Math.max(0, Math.min(maxZoom, Math.round(map.getZoom())));
  }

  /* Leaflet bounds as minlon,minlat,maxlon,maxlat clamped to the world (Leaflet goes past
     it); null when nothing of the world is left. */
  function boundsBBox(b) {
    var west = Math.max(-180, b.getWest());
    var east = Math.min(180, b.getEast());
    var south = Math.max(-90, b.getSouth());
    var north = Math.min(90, b.getNorth());
    if (!(west < east && south < north)) {
      return null;
    }
    return [west, south, east, north]
      .map(function (v) {
        return v.toFixed(6);
      })
      .join(",");
  }

  /* The map's view as boundsBBox. */
  function viewBBox(map) {
    return boundsBBox(map.getBounds());
  }

  /* A setStatus(text, isError) bound to a status element (missing element: no-op). */
  function statusSetter(node) {
    return function (text, isError) {
      if (!node) {
        return;
      }
      node.textContent = text || "";
      node.hidden = !text;
      node.classList.toggle("is-error", Boolean(isError));
    };
  }

  /*
   * Attribution (plain text, escaped: Leaflet writes it as HTML), zoom buttons, the
   * configured tile layer (none without a tile URL: no request leaves the server) and
   * data-zoom / data-moving on the map element, so tests can wait for the map to settle.
   */
  function addBaseControls(map, mapNode, config, labels) {
    // Added before the zoom buttons so it stays in the bottom corner, under them.
    var attributionControl = L.control.attribution({ position: "bottomright", prefix: false });
    attributionControl.addTo(map);
    (config.attributions || []).forEach(function (text) {
      attributionControl.addAttribution(escapeHtml(text));
    });
    L.control
      .zoom({ position: "bottomright", zoomInTitle: labels.zoomIn, zoomOutTitle: labels.zoomOut })
      .addTo(map);
    if (config.tileUrl) {
      L.tileLayer(config.tileUrl, {
        maxZoom: 19,
        attribution: config.tileAttribution ? escapeHtml(config.tileAttribution) : "",
      }).addTo(map);
    } else {
      mapNode.classList.add("map-no-tiles");
    }
    function recordView() {
      mapNode.setAttribute("data-zoom", String(map.getZoom()));
    }
    map.on("zoomend", recordView);
    recordView();
    map.on("movestart", function () { mapNode.setAttribute("data-moving", "true"); });
    map.on("moveend", function () { mapNode.setAttribute("data-moving", "false"); });
    return attributionControl;
  }

  global.BarrioMap = {
    addBaseControls: addBaseControls,
    escapeHtml: escapeHtml,
    format: format,
    getJSON: getJSON,
    apiZoom: apiZoom,
    boundsBBox: boundsBBox,
    viewBBox: viewBBox,
    statusSetter: statusSetter,
  };
})(window);
