/*
 * Planner map: the incidents layer. Below `pointsMinZoom` the server's grid clusters (a
 * circle sized by its count, the count written inside); from that zoom on, the raw
 * incidents of the view, grouped on screen by Leaflet.markercluster, each with a popup of
 * its details. The "Incidents" toggle hides both.
 */
import { apiUrl, bboxBounds, definitionRow, el, format } from "../common.js";

export function createIncidents(ctx, filters) {
  var map = ctx.map;
  var mapNode = ctx.mapNode;
  var labels = ctx.labels;
  var formatNumber = ctx.formatNumber;
  var categoryName = filters.categoryName;
  var pointsMinZoom = ctx.pointsMinZoom;

  // --- dates ----------------------------------------------------------------------

  function dateFormat(options) {
    var withZone = L.extend({}, options);
    if (ctx.config.timeZone) {
      withZone.timeZone = ctx.config.timeZone;
    }
    try {
      return new Intl.DateTimeFormat(ctx.lang, withZone);
    } catch (error) {
      return new Intl.DateTimeFormat(ctx.lang, options); // an unknown time zone name
    }
  }

  var DATE_FORMATS = {
    exact: dateFormat({ dateStyle: "long", timeStyle: "short" }),
    day: dateFormat({ dateStyle: "long" }),
    month: dateFormat({ year: "numeric", month: "long" }),
    range: dateFormat({ dateStyle: "medium", timeStyle: "short" }),
  };

  function parseDate(value) {
    if (!value) {
      return null;
    }
    var date = new Date(value);
    return isNaN(date.getTime()) ? null : date;
  }

  /* The incident's time as precisely as it is known: occurred_at is the start of the
     window, occurred_until its (exclusive) end. */
  function formatWhen(props) {
    var start = parseDate(props.occurred_at);
    if (!start) {
      return "";
    }
    var precision = props.time_precision || "exact";
    var end = parseDate(props.occurred_until);
    if (precision === "range" && end) {
      return format(labels.range, {
        start: DATE_FORMATS.range.format(start),
        end: DATE_FORMATS.range.format(end),
      });
    }
    return (DATE_FORMATS[precision] || DATE_FORMATS.exact).format(start);
  }

  // --- server clusters (low zoom) -------------------------------------------------

  var incidentChannel = ctx.channel("incidents");
  var clusterLayer = L.layerGroup().addTo(map);

  /* A circle's diameter: by the square root of its share of the largest count drawn,
     between 24 px and 52 px (the server's grid cells are about 60 px), and wide enough
     for its number. */
  function clusterSize(count, largest) {
    var share = Math.min(1, Math.sqrt(Math.max(1, count) / Math.max(1, largest || count)));
    var digits = String(Math.max(1, count)).length;
    return Math.round(Math.max(24 + 28 * share, 12 + 8 * digits));
  }

  /* A circle sized by its count, the count written inside (as text). */
  function clusterIcon(count, kind, largest) {
    var size = clusterSize(count, largest);
    var circle = el("span", "incident-cluster-circle", formatNumber(count));
    circle.style.width = size + "px";
    circle.style.height = size + "px";
    circle.style.lineHeight = size - 4 + "px";
    circle.setAttribute("data-count", String(count));
    return L.divIcon({
      html: circle,
      className: "incident-cluster incident-cluster-" + kind,
      iconSize: [size, size],
    });
  }

  function clusterBounds(bbox) {
    return Array.isArray(bbox) && bbox.every(isFinite) ? bboxBounds(bbox) : null;
  }

  function drawClusters(data) {
    clusterLayer.clearLayers();
    var total = 0;
    var features = data.features || [];
    var largest = features.reduce(function (max, feature) {
      return Math.max(max, Number((feature.properties || {}).count) || 0);
    }, 1);
    features.forEach(function (feature) {
      var coords = feature.geometry && feature.geometry.coordinates;
      var count = Number((feature.properties || {}).count) || 0;
      if (!coords || !count) {
        return;
      }
      total += count;
      var latlng = L.latLng(coords[1], coords[0]);
      var size = clusterSize(count, largest);
      var marker = L.marker(latlng, {
        icon: clusterIcon(count, "server", largest),
        title: format(labels.clusterTitle, { count: formatNumber(count) }),
        // Smaller circles above larger ones, so that none is hidden.
        zIndexOffset: (60 - size) * 1000,
        riseOnHover: true,
      });
      var extent = clusterBounds((feature.properties || {}).bbox);
      marker.on("click", function () {
        // Zoom to the cluster's incidents, at least two levels in.
        var zoom = map.getZoom() + 2;
        if (extent) {
          zoom = Math.max(zoom, Math.min(map.getBoundsZoom(extent.pad(0.2)), pointsMinZoom));
          latlng = extent.getCenter();
        }
        map.setView(latlng, Math.min(map.getMaxZoom(), zoom));
      });
      clusterLayer.addLayer(marker);
    });
    return total;
  }

  // --- raw incidents (high zoom) --------------------------------------------------

  var pointLayer = L.markerClusterGroup({
    maxClusterRadius: 40,
    showCoverageOnHover: false,
    spiderfyOnMaxZoom: true, // incidents at the very same place fan out when clicked
    chunkedLoading: true,
    clusterPane: "incidentPoints",
    iconCreateFunction: function (cluster) {
      return clusterIcon(cluster.getChildCount(), "local", 100);
    },
  });

  function incidentIcon(props) {
    var family = props.family === "incivility" ? "incivility" : "crime";
    var dot = el("span", "incident-dot");
    dot.setAttribute("data-id", String(props.id));
    dot.setAttribute("data-category", String(props.category));
    return L.divIcon({
      html: dot,
      className:
        "incident-marker incident-marker-" + family + (props.sensitive ? " is-sensitive" : ""),
      iconSize: [16, 16],
      popupAnchor: [0, -6],
    });
  }

  /* The incident's details, built node by node: every value is set as text. */
  function incidentPopup(props) {
    var box = el("div", "incident-popup");
    box.setAttribute("data-id", String(props.id));
    var family = (labels.families || {})[props.family] || props.family || "";
    box.appendChild(el("p", "incident-popup-kind", family));
    var title = el("h3", "incident-popup-title", categoryName(props.category, props.category_name));
    if (props.sensitive) {
      title.appendChild(document.createTextNode(" "));
      title.appendChild(filters.sensitiveBadge());
    }
    box.appendChild(title);
    var list = el("dl", "incident-popup-details");
    definitionRow(list, labels.when, formatWhen(props));
    definitionRow(
      list,
      labels.precision,
      (labels.timePrecision || {})[props.time_precision] || props.time_precision
    );
    definitionRow(list, labels.source, props.source);
    definitionRow(list, labels.district, props.district_name || props.district || labels.notAssigned);
    definitionRow(
      list,
      labels.neighborhood,
      props.neighborhood_name || props.neighborhood || labels.notAssigned
    );
    definitionRow(
      list,
      labels.locationQuality,
      (labels.locationQualities || {})[props.location_quality] || props.location_quality
    );
    box.appendChild(list);
    return box;
  }

  var pointMarkers = {}; // incident id -> its marker, while raw points are drawn

  function incidentMarker(props, latlng) {
    var name = categoryName(props.category, props.category_name);
    var marker = L.marker(latlng, {
      icon: incidentIcon(props),
      title: name,
      alt: name,
      riseOnHover: true,
      pane: "incidentPoints",
    });
    marker.bindPopup(
      function () {
        return incidentPopup(props);
      },
      { className: "incident-popup-wrap", maxWidth: 300, autoPanPadding: [16, 16] }
    );
    return marker;
  }

  /* Only the difference with what is drawn: incidents still in view keep their marker
     (and an open popup stays open when the map pans to show it). */
  function drawPoints(data) {
    var seen = {};
    var added = [];
    (data.features || []).forEach(function (feature) {
      var coords = feature.geometry && feature.geometry.coordinates;
      var props = feature.properties || {};
      if (!coords || props.id === undefined || props.id === null) {
        return;
      }
      var key = String(props.id);
      seen[key] = true;
      if (!pointMarkers[key]) {
        pointMarkers[key] = incidentMarker(props, L.latLng(coords[1], coords[0]));
        added.push(pointMarkers[key]);
      }
    });
    var removed = [];
    Object.keys(pointMarkers).forEach(function (key) {
      if (!seen[key]) {
        removed.push(pointMarkers[key]);
        delete pointMarkers[key];
      }
    });
    if (removed.length) {
      pointLayer.removeLayers(removed);
    }
    if (added.length) {
      pointLayer.addLayers(added);
    }
    return Object.keys(pointMarkers).length;
  }

  function clearPoints() {
    pointLayer.clearLayers();
    pointMarkers = {};
  }

  function showMode(mode) {
    if (mode === "clusters") {
      if (map.hasLayer(pointLayer)) {
        map.removeLayer(pointLayer);
      }
      clearPoints();
      if (!map.hasLayer(clusterLayer)) {
        clusterLayer.addTo(map);
      }
    } else {
      clusterLayer.clearLayers();
      if (!map.hasLayer(pointLayer)) {
        pointLayer.addTo(map);
      }
    }
    mapNode.setAttribute("data-mode", mode);
  }

  // --- loading --------------------------------------------------------------------

  function clear() {
    incidentChannel.abort();
    clusterLayer.clearLayers();
    clearPoints();
    mapNode.setAttribute("data-incidents", "0");
    mapNode.setAttribute("data-drawn", "0");
  }

  function load(filterParams, bbox) {
    var zoom = ctx.apiZoom();
    var mode = zoom < pointsMinZoom ? "clusters" : "points";
    var params = L.extend({}, filterParams, { bbox: bbox });
    if (mode === "clusters") {
      params.zoom = zoom;
    }
    var url = apiUrl(mode === "clusters" ? ctx.api.clusters : ctx.api.incidents, params);
    return incidentChannel.get(url, {
      draw: function (data) {
        showMode(mode);
        var drawn = 0;
        var incidents = 0;
        if (mode === "clusters") {
          incidents = drawClusters(data);
          drawn = clusterLayer.getLayers().length;
        } else {
          incidents = drawn = drawPoints(data);
        }
        mapNode.setAttribute("data-drawn", String(drawn));
        mapNode.setAttribute("data-incidents", String(incidents));
        if (data.truncated) {
          ctx.setStatus(
            format(labels.truncated, { limit: formatNumber(data.limit || drawn) })
          );
        } else {
          ctx.setStatus("");
        }
      },
      fail: function () {
        ctx.setStatus(labels.loadError, true);
      },
    });
  }

  // --- the layer on or off --------------------------------------------------------

  var incidentsToggle = document.getElementById("incidents-toggle");

  function isOn() {
    return !incidentsToggle || incidentsToggle.checked;
  }

  function showIncidentsState() {
    mapNode.setAttribute("data-incidents-layer", isOn() ? "on" : "off");
  }
  showIncidentsState();

  if (incidentsToggle) {
    incidentsToggle.addEventListener("change", function () {
      showIncidentsState();
      if (!isOn()) {
        clear();
        ctx.setStatus("");
        return;
      }
      var filterParams = filters.currentFilters();
      var bbox = ctx.viewBBox();
      if (ctx.started() && filterParams && bbox) {
        load(filterParams, bbox);
      }
    });
  }

  return { load: load, clear: clear, isOn: isOn, abort: function () { incidentChannel.abort(); } };
}
