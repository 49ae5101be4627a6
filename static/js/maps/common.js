/*
 * Helpers shared by Barrio's pages: the public map, the planner map (and its layer
 * modules under maps/planner/), the municipal public-space pages and the job progress
 * script. An ES module: each page's own module imports what it uses.
 */

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, function (c) {
    return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
  });
}

/* Django-style "%(name)s" placeholders, as in the translated labels. */
export function format(template, values) {
  return String(template).replace(/%\((\w+)\)s/g, function (match, key) {
    return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : match;
  });
}

export function getJSON(url, signal) {
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

export function apiZoom(map, maxZoom) {
  return Math.max(0, Math.min(maxZoom, Math.round(map.getZoom())));
}

/* Leaflet bounds as minlon,minlat,maxlon,maxlat clamped to the world (Leaflet goes past
   it); null when nothing of the world is left. */
export function boundsBBox(b) {
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
export function viewBBox(map) {
  return boundsBBox(map.getBounds());
}

/* A setStatus(text, isError) bound to a status element (missing element: no-op). */
export function statusSetter(node) {
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
export function addBaseControls(map, mapNode, config, labels) {
  // Added before the zoom buttons so it stays in the bottom corner, under them.
  var attributionControl = L.control.attribution({ position: "bottomright", prefix: false });
  attributionControl.addTo(map);
  creditWhatIsOnScreen(map, attributionControl, config);
  addCreditsButton(map, mapNode, config);
  L.control
    .zoom({ position: "bottomright", zoomInTitle: labels.zoomIn, zoomOutTitle: labels.zoomOut })
    .addTo(map);
  if (config.tileUrl) {
    L.tileLayer(config.tileUrl, {
      maxZoom: 19,
      attribution: config.tileAttribution ? escapeHtml(config.tileAttribution) : "",
    }).addTo(map);
  } else if (!addVectorBaseMap(map, mapNode, config)) {
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

/* Data sources are credited while what they drew is on screen (config.attributionExtents:
   {text, bbox}), so a city's map does not list every city loaded. Without extents, every
   source is credited (config.attributions). */
function creditWhatIsOnScreen(map, control, config) {
  var extents = config.attributionExtents;
  if (!Array.isArray(extents)) {
    (config.attributions || []).forEach(function (text) {
      control.addAttribution(escapeHtml(text));
    });
    return;
  }
  var shown = {};
  function update() {
    var view = map.getBounds();
    extents.forEach(function (source) {
      var bounds = bboxBounds(source.bbox);
      var visible = Boolean(bounds && view.intersects(bounds));
      var html = escapeHtml(source.text);
      if (visible && !shown[html]) {
        control.addAttribution(html);
        shown[html] = true;
      } else if (!visible && shown[html]) {
        control.removeAttribution(html);
        delete shown[html];
      }
    });
  }
  map.on("moveend", update);
  map.whenReady(update);
}

/* On a small screen the credits fold into an (i) button beside the zoom buttons, so they
   never cover the map; the button opens and closes them. */
function addCreditsButton(map, mapNode, config) {
  var Credits = L.Control.extend({
    options: { position: "bottomright" },
    onAdd: function () {
      var button = L.DomUtil.create("button", "map-credits-button");
      button.type = "button";
      button.textContent = "i";
      button.title = config.attributionLabel || "";
      button.setAttribute("aria-label", config.attributionLabel || "");
      button.setAttribute("aria-expanded", "false");
      L.DomEvent.disableClickPropagation(button);
      L.DomEvent.on(button, "click", function () {
        var open = !mapNode.classList.contains("map-credits-open");
        mapNode.classList.toggle("map-credits-open", open);
        button.setAttribute("aria-expanded", String(open));
      });
      return button;
    },
  });
  new Credits().addTo(map);
}

/* Neighbourhood names, which protomaps-leaflet's default style leaves out (its rule is
   commented out): where a barrio is matters more here than anywhere. */
function neighbourhoodLabelRule(lang) {
  return {
    dataLayer: "places",
    minzoom: 13,
    symbolizer: new protomapsL.CenteredTextSymbolizer({
      labelProps: ["name:" + lang, "name"],
      fill: "#6e6259",
      stroke: "#ffffff",
      width: 2,
      font: "500 11px sans-serif",
      textTransform: "uppercase",
    }),
    filter: function (zoom, feature) {
      return feature.props.kind === "neighbourhood";
    },
  };
}

/*
 * The self-hosted vector base map (geo/basemap.py): the PMTiles archive this server
 * serves, read by range requests and drawn by protomaps-leaflet in the page's language.
 * Below every data layer (its own pane), never wider than the archive's bounds, and
 * over-zoomed past its deepest zoom. False when there is none (no archive, or the script
 * did not load): the map then draws on its plain background.
 */
function addVectorBaseMap(map, mapNode, config) {
  if (!config.pmtilesUrl || typeof protomapsL === "undefined") {
    return false;
  }
  var lang = (document.documentElement.lang || "es").slice(0, 2);
  map.createPane("basemap");
  map.getPane("basemap").style.zIndex = 150;
  var bounds = bboxBounds(config.pmtilesBounds);
  var options = {
    url: new URL(config.pmtilesUrl, window.location.href).href,
    flavor: "light",
    lang: lang,
    pane: "basemap",
    maxDataZoom: config.pmtilesMaxZoom || 15,
    attribution: escapeHtml(config.pmtilesAttribution || ""),
  };
  if (bounds) {
    options.bounds = bounds.pad(0.05);
  }
  var layer = protomapsL.leafletLayer(options);
  layer.labelRules.push(neighbourhoodLabelRule(lang));
  layer.on("tileload", function () {
    mapNode.setAttribute("data-basemap", "drawn");
  });
  layer.addTo(map);
  mapNode.classList.add("map-vector-basemap");
  mapNode.setAttribute("data-basemap", "loading");
  return true;
}

/* The map of a page: no zoom or attribution control of Leaflet's own (addBaseControls
   adds Barrio's), the view from the page's settings until the data frames it. */
export function createMap(mapNode, config, labels) {
  var map = L.map(mapNode, {
    center: config.center || [0, 0],
    zoom: typeof config.zoom === "number" ? config.zoom : 11,
    minZoom: 2,
    maxZoom: 19,
    zoomControl: false,
    attributionControl: false,
  });
  addBaseControls(map, mapNode, config, labels);
  keepOneTooltipOpen(map);
  return map;
}

/* A sticky tooltip closes on its layer's mouseout, but a layer redrawn under the pointer
   (areas reload after every move) can miss that event and leave a stale tooltip beside
   the current one: opening a tooltip closes the one shown before. */
function keepOneTooltipOpen(map) {
  var shown = null;
  map.on("tooltipopen", function (event) {
    if (shown && shown !== event.tooltip && map.hasLayer(shown)) {
      map.closeTooltip(shown);
    }
    shown = event.tooltip;
  });
  map.on("tooltipclose", function (event) {
    if (shown === event.tooltip) {
      shown = null;
    }
  });
}

/* A map page's settings and labels (json_script ids) and its #map element; null when the
   page has no map element or Leaflet did not load. */
export function mapPage(configId, labelsId) {
  var config = readJSON(configId);
  var labels = readJSON(labelsId);
  var mapNode = document.getElementById("map");
  if (!mapNode || typeof L === "undefined") {
    return null;
  }
  return { config: config, labels: labels, mapNode: mapNode };
}

/* The content of a json_script element; {} when the page has none. */
export function readJSON(id) {
  var node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : {};
}

/* An element with an optional class and text (set as text, never as markup). */
export function el(tag, className, text) {
  var node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined && text !== null) {
    node.textContent = String(text);
  }
  return node;
}

/* A term and its value appended to a <dl> (nothing when there is no value). */
export function definitionRow(list, term, value) {
  if (value === undefined || value === null || value === "") {
    return;
  }
  list.appendChild(el("dt", null, term));
  list.appendChild(el("dd", null, value));
}

/* Attributes on a drawn layer's element (as attributes, never markup): for styling and
   for the browser tests. Returns the element (null while it has none). */
export function tagLayer(layer, attributes) {
  var element = layer.getElement && layer.getElement();
  if (element) {
    Object.keys(attributes).forEach(function (name) {
      element.setAttribute(name, String(attributes[name]));
    });
  }
  return element || null;
}

export function apiUrl(base, params) {
  // Relative API paths resolved against this page: requests stay on this origin.
  var url = new URL(base, window.location.href);
  Object.keys(params || {}).forEach(function (key) {
    var value = params[key];
    if (value !== undefined && value !== null && value !== "") {
      url.searchParams.set(key, value);
    }
  });
  return url.pathname + url.search;
}

/* A [minlon, minlat, maxlon, maxlat] box as Leaflet bounds; null when it is not one. */
export function bboxBounds(b) {
  if (!Array.isArray(b) || b.length !== 4) {
    return null;
  }
  return L.latLngBounds([b[1], b[0]], [b[3], b[2]]);
}

export function matchesMedia(query) {
  return Boolean(window.matchMedia && window.matchMedia(query).matches);
}

/* A <details> legend starts folded on small screens. */
export function foldOnSmallScreens(legend, query) {
  if (legend && matchesMedia(query)) {
    legend.open = false;
  }
}

export function isAbort(error) {
  return Boolean(error && error.name === "AbortError");
}

export function logError(error) {
  if (!isAbort(error) && window.console) {
    window.console.error(error);
  }
}

/* The region picked in the page's region picker (#region-picker, rendered by the server
   with the visitor's region chosen): its summary from the regions API, or null. */
export function chosenRegion(config, regions) {
  var select = document.getElementById("region-picker");
  var code = (select && select.value) || config.chosenRegion;
  return (
    regions.filter(function (region) {
      return region.code === code && bboxBounds(region.bbox);
    })[0] || null
  );
}

/* Wires the region picker: a new choice calls onChange(code) and is remembered by the
   server (the visitor's session, and a signed-in user's profile). */
export function watchRegionPicker(config, onChange) {
  var select = document.getElementById("region-picker");
  if (!select) {
    return;
  }
  select.addEventListener("change", function () {
    var code = select.value;
    onChange(code);
    var url = new URL(window.location.href);
    url.searchParams.set("region", code);
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    fetch(config.chooseRegionUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-CSRFToken": config.csrfToken || "",
      },
      body: new URLSearchParams({ region: code }).toString(),
    }).catch(logError);
  });
}
