/*
 * Barrio planner map: recorded incidents for police planners, from the planners-only
 * incident API under /api/v1/.
 *
 * Below `pointsMinZoom` the map shows the server's grid clusters (a circle sized by its
 * count, the count written inside); from that zoom on, the raw incidents of the view,
 * grouped on screen by Leaflet.markercluster. A heat layer (Leaflet.heat) can be laid
 * over them. The panel holds the filters (dates, district, categories by family) and the
 * counts per category for the current view and filters; the CSV export link carries the
 * same filters.
 *
 * Settings and translated labels come from the page (json_script). Every string that
 * comes from data (category, source, district names) reaches the DOM as text:
 * textContent, DOM nodes for popups and icons, never innerHTML. Every request goes to
 * this page's own origin, and a request still in flight is aborted as soon as the view
 * or the filters change (AbortController).
 */
(function () {
  "use strict";

  function readJSON(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : {};
  }

  var config = readJSON("planner-config");
  var labels = readJSON("planner-labels");
  var api = config.api || {};
  var mapNode = document.getElementById("map");
  if (!mapNode || typeof L === "undefined") {
    return;
  }

  var LANG = document.documentElement.lang || "es";
  var MAX_API_ZOOM = 24;
  var FULL_DETAIL_ZOOM = 16; // the boundary API stops simplifying from this zoom on
  var POINTS_MIN_ZOOM = config.pointsMinZoom || 15;
  var DEBOUNCE_MS = 250;
  var PHONE_QUERY = "(max-width: 760px)";
  var FAMILY_ORDER = ["crime", "incivility"];

  var STYLES = {
    district: {
      pane: "districts",
      interactive: false,
      fill: true,
      color: "#1f5f8b",
      weight: 2,
      opacity: 0.85,
      fillColor: "#4f9bd1",
      fillOpacity: 0.05,
    },
    districtDimmed: { opacity: 0.35, weight: 1.5, fillOpacity: 0 },
    districtSelected: { color: "#0b3557", weight: 4, opacity: 1, fillOpacity: 0.1 },
  };

  // --- small helpers -------------------------------------------------------------



  var numberFormat = new Intl.NumberFormat(LANG);
  function formatNumber(n) {
    return numberFormat.format(n);
  }

  function apiUrl(base, params) {
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


  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }



  var common = window.BarrioMap;
  var escapeHtml = common.escapeHtml;
  var format = common.format;
  var getJSON = common.getJSON;
  function apiZoom() {
    return common.apiZoom(map, MAX_API_ZOOM);
  }
  function viewBBox() {
    return common.viewBBox(map);
  }
  var boundsBBox = common.boundsBBox;
  var setStatus = common.statusSetter(document.getElementById("map-status"));

  function isAbort(error) {
    return Boolean(error && error.name === "AbortError");
  }

  function logError(error) {
    if (!isAbort(error) && window.console) {
      window.console.error(error);
    }
  }

  /* One kind of request (clusters or points, counts, heat): starting a new one aborts the
     one still in flight, and only the latest one may draw. */
  function Channel(name) {
    this.name = name;
    this.controller = null;
  }
  Channel.prototype.start = function () {
    this.abort();
    this.controller = new AbortController();
    busy(this.name, true);
    return this.controller;
  };
  Channel.prototype.isCurrent = function (controller) {
    return this.controller === controller;
  };
  Channel.prototype.finish = function (controller) {
    if (this.controller === controller) {
      this.controller = null;
      busy(this.name, false);
    }
  };
  Channel.prototype.abort = function () {
    if (this.controller) {
      this.controller.abort();
      this.controller = null;
      busy(this.name, false);
    }
  };

  var inFlight = {};
  function busy(name, on) {
    if (on) {
      inFlight[name] = true;
    } else {
      delete inFlight[name];
    }
    mapNode.setAttribute("aria-busy", Object.keys(inFlight).length ? "true" : "false");
  }

  // --- dates ----------------------------------------------------------------------

  function dateFormat(options) {
    var withZone = L.extend({}, options);
    if (config.timeZone) {
      withZone.timeZone = config.timeZone;
    }
    try {
      return new Intl.DateTimeFormat(LANG, withZone);
    } catch (error) {
      return new Intl.DateTimeFormat(LANG, options); // an unknown time zone name
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

  // --- map, panes, controls ------------------------------------------------------

  var map = L.map(mapNode, {
    center: config.center || [0, 0],
    zoom: typeof config.zoom === "number" ? config.zoom : 11,
    minZoom: 2,
    maxZoom: 19,
    zoomControl: false,
    attributionControl: false,
  });
  map.createPane("districts").style.zIndex = "350"; // under the heat canvas and markers
  /* Stacking, bottom to top: districts, hotspot cells (a canvas), the heat map, the
     server's incident clusters (markerPane, 600), hotspot zones, recovered spaces
     (planner_spaces.js), raw incidents. A zone is drawn over the clusters, which only
     summarise counts (a click zooms in), so a click inside it opens its figures; raw
     incidents, drawn from POINTS_MIN_ZOOM on, stay above it so that each one can be
     opened. The "Incidents" toggle hides both. */
  map.createPane("incidentPoints").style.zIndex = "620";

  common.addBaseControls(map, mapNode, config, labels);

  /* The layer toggles join the map's top-right corner as a Leaflet control, so Leaflet
     stacks them with the other panels there (recovered spaces) instead of overlapping. */
  var layerToggles = document.getElementById("map-layer-toggles");
  if (layerToggles) {
    var LayerToggles = L.Control.extend({
      options: { position: "topright" },
      onAdd: function () {
        L.DomEvent.disableClickPropagation(layerToggles);
        L.DomEvent.disableScrollPropagation(layerToggles);
        return layerToggles;
      },
    });
    new LayerToggles().addTo(map);
  }
  function recordView() {
    mapNode.setAttribute("data-zoom", String(map.getZoom()));
  }

  /* The view lives in the address (#zoom/lat/lon), so a view can be reloaded or shared. */
  function viewFromHash() {
    var parts = window.location.hash.replace(/^#/, "").split("/");
    if (parts.length !== 3) {
      return null;
    }
    var zoom = Number(parts[0]);
    var lat = Number(parts[1]);
    var lon = Number(parts[2]);
    if (![zoom, lat, lon].every(isFinite) || Math.abs(lat) > 90 || Math.abs(lon) > 180) {
      return null;
    }
    return { zoom: Math.max(2, Math.min(19, zoom)), center: [lat, lon] };
  }

  function writeHash() {
    var center = map.getCenter();
    var hash = "#" + map.getZoom() + "/" + center.lat.toFixed(5) + "/" + center.lng.toFixed(5);
    if (window.location.hash !== hash && window.history && window.history.replaceState) {
      window.history.replaceState(null, "", hash);
    }
  }

  // The language switch comes back to this view, not to the regions' extent.
  var languageForm = document.querySelector("form.lang-switch");
  if (languageForm) {
    languageForm.addEventListener("submit", function () {
      var next = languageForm.querySelector("input[name=next]");
      if (next && window.location.hash) {
        next.value = next.value.split("#")[0] + window.location.hash;
      }
    });
  }

  window.addEventListener("hashchange", function () {
    var view = viewFromHash();
    if (view) {
      map.setView(view.center, view.zoom);
    }
  });

  // --- panel (collapsible; folded on phones) ------------------------------------------

  var panel = document.getElementById("planner-panel");
  var panelToggle = document.getElementById("panel-toggle");

  function setPanelOpen(open) {
    if (!panel || !panelToggle) {
      return;
    }
    panel.hidden = !open;
    panelToggle.setAttribute("aria-expanded", open ? "true" : "false");
    panelToggle.setAttribute("title", open ? labels.hideFilters : labels.showFilters);
    document.body.classList.toggle("planner-panel-open", open);
    map.invalidateSize();
  }

  var onPhone = Boolean(window.matchMedia && window.matchMedia(PHONE_QUERY).matches);
  setPanelOpen(!onPhone);
  if (panelToggle) {
    panelToggle.addEventListener("click", function () {
      setPanelOpen(panel.hidden);
    });
  }

  var legend = document.getElementById("map-legend");
  if (legend && onPhone) {
    legend.open = false;
  }

  /* Room kept free when fitting the map to an area: the zoom buttons (bottom right) and
     the open legend (bottom left), either beside it or above it, whichever lets the
     area be shown larger. */
  function fitOptions(bounds) {
    var base = { paddingTopLeft: [16, 16], paddingBottomRight: [56, 16] };
    if (!legend || !legend.open || !legend.offsetWidth) {
      return base;
    }
    var choices = [
      { paddingTopLeft: [legend.offsetLeft + legend.offsetWidth + 8, 16], paddingBottomRight: [56, 16] },
      { paddingTopLeft: [16, 16], paddingBottomRight: [56, mapNode.clientHeight - legend.offsetTop + 8] },
    ];
    var best = base;
    var bestZoom = -Infinity;
    choices.forEach(function (choice) {
      var room = L.point(choice.paddingTopLeft).add(choice.paddingBottomRight);
      if (room.x >= mapNode.clientWidth - 64 || room.y >= mapNode.clientHeight - 64) {
        return; // a small map: better partly behind the legend than tiny
      }
      var zoom = map.getBoundsZoom(bounds, false, room);
      if (zoom > bestZoom) {
        best = choice;
        bestZoom = zoom;
      }
    });
    return best;
  }

  // --- categories and filters ----------------------------------------------------------

  var form = document.getElementById("planner-filters");
  var fromInput = document.getElementById("filter-from");
  var toInput = document.getElementById("filter-to");
  var districtSelect = document.getElementById("filter-district");
  var groupsNode = document.getElementById("category-groups");
  var filterError = document.getElementById("filter-error");
  var exportLink = document.getElementById("export-csv");
  var categoriesByCode = {};
  var categoryCount = 0;

  function categoryName(code, fallback) {
    var category = categoriesByCode[code];
    if (category) {
      return category["name_" + LANG] || category.name || fallback || code;
    }
    return fallback || code;
  }

  function sensitiveBadge() {
    var badge = el("span", "badge badge-sensitive", labels.sensitive);
    badge.title = labels.sensitiveHint;
    return badge;
  }

  function categoryGroupsOf(categories) {
    var groups = {};
    FAMILY_ORDER.forEach(function (family) {
      groups[family] = [];
    });
    var unclassified = [];
    categories.forEach(function (category) {
      if (category.unclassified) {
        unclassified.push(category);
      } else {
        (groups[category.family] = groups[category.family] || []).push(category);
      }
    });
    var byName = function (a, b) {
      return categoryName(a.code).localeCompare(categoryName(b.code), LANG);
    };
    var families = Object.keys(groups).sort(function (a, b) {
      var ia = FAMILY_ORDER.indexOf(a);
      var ib = FAMILY_ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || (a < b ? -1 : a > b ? 1 : 0);
    });
    var result = families
      .filter(function (family) {
        return groups[family].length;
      })
      .map(function (family) {
        return {
          key: family,
          title: (labels.families || {})[family] || family,
          items: groups[family].sort(byName),
        };
      });
    if (unclassified.length) {
      // Source labels nobody has mapped yet: listed last, whatever their family.
      result.push({ key: "unclassified", title: labels.unclassified, items: unclassified.sort(byName) });
    }
    return result;
  }

  function syncGroupToggle(fieldset) {
    var boxes = fieldset.querySelectorAll("input[name=category]");
    var checked = fieldset.querySelectorAll("input[name=category]:checked").length;
    var all = fieldset.querySelector("input.category-all");
    if (all) {
      all.checked = checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
  }

  function buildCategoryFilter(categories) {
    categoriesByCode = {};
    categories.forEach(function (category) {
      categoriesByCode[category.code] = category;
    });
    categoryCount = categories.length;
    groupsNode.textContent = "";
    categoryGroupsOf(categories).forEach(function (group) {
      var fieldset = el("fieldset", "category-group category-group-" + group.key);
      fieldset.setAttribute("data-family", group.key);
      var legendNode = el("legend", "category-group-title");
      var allLabel = el("label", "category-all-label");
      var all = el("input", "category-all");
      all.type = "checkbox";
      all.defaultChecked = true; // what the form's reset button returns to
      all.checked = true;
      all.setAttribute("aria-label", format(labels.allInFamily, { family: group.title }));
      allLabel.appendChild(all);
      allLabel.appendChild(el("span", "family-swatch family-" + group.key));
      allLabel.appendChild(el("span", null, group.title));
      legendNode.appendChild(allLabel);
      fieldset.appendChild(legendNode);

      var list = el("ul", "category-list");
      group.items.forEach(function (category) {
        var item = el("li", "category-item");
        var label = el("label");
        var box = el("input");
        box.type = "checkbox";
        box.name = "category";
        box.value = category.code;
        box.defaultChecked = true;
        box.checked = true;
        label.appendChild(box);
        label.appendChild(el("span", "category-name", categoryName(category.code)));
        if (category.sensitive) {
          item.classList.add("is-sensitive");
          label.appendChild(sensitiveBadge());
        }
        item.appendChild(label);
        list.appendChild(item);
      });
      fieldset.appendChild(list);

      all.addEventListener("change", function () {
        fieldset.querySelectorAll("input[name=category]").forEach(function (box) {
          box.checked = all.checked;
        });
        all.indeterminate = false;
      });
      list.addEventListener("change", function () {
        syncGroupToggle(fieldset);
      });
      groupsNode.appendChild(fieldset);
    });
    groupsNode.setAttribute("aria-busy", "false");
  }

  function selectedCategories() {
    return Array.prototype.map.call(
      groupsNode.querySelectorAll("input[name=category]:checked"),
      function (box) {
        return box.value;
      }
    );
  }

  /* The filter parameters shared by every incident endpoint, or null when they select
     nothing at all (no category ticked, or dates the wrong way round). */
  function currentFilters() {
    var filters = {};
    var problem = "";
    if (fromInput.value) {
      filters.from = fromInput.value;
    }
    if (toInput.value) {
      filters.to = toInput.value;
    }
    if (filters.from && filters.to && filters.from > filters.to) {
      problem = labels.badDates;
    }
    if (categoryCount) {
      var codes = selectedCategories();
      if (!codes.length) {
        problem = problem || labels.noCategories;
      } else if (codes.length < categoryCount) {
        filters.category = codes.join(",");
      }
    }
    var district = districtSelect.value ? districtsByKey[districtSelect.value] : null;
    if (district) {
      filters.region = district.region;
      filters.district = district.code;
    }
    filterError.textContent = problem;
    filterError.hidden = !problem;
    return problem ? null : filters;
  }

  function updateExportLink(filters) {
    if (!exportLink) {
      return;
    }
    if (filters) {
      exportLink.href = apiUrl(api.export, filters);
      exportLink.removeAttribute("aria-disabled");
    } else {
      exportLink.removeAttribute("href");
      exportLink.setAttribute("aria-disabled", "true");
    }
  }

  fromInput.addEventListener("change", function () {
    toInput.min = fromInput.value;
  });
  toInput.addEventListener("change", function () {
    fromInput.max = toInput.value;
  });

  // --- districts: outlines and the district filter --------------------------------

  var districtLayer = null;
  var districtZoom = null;
  var districtChannel = new Channel("districts");
  var districtsByKey = {};
  var districtLayers = {};

  function districtKey(props) {
    return String(props.region) + "|" + String(props.code);
  }

  function districtStyle(feature) {
    var selected = districtSelect.value;
    if (!selected) {
      return STYLES.district;
    }
    var key = districtKey(feature.properties || {});
    return L.extend(
      {},
      STYLES.district,
      key === selected ? STYLES.districtSelected : STYLES.districtDimmed
    );
  }

  function restyleDistricts() {
    if (districtLayer) {
      districtLayer.setStyle(districtStyle);
    }
  }

  function fillDistrictSelect(features, regionNames) {
    var byRegion = {};
    features.forEach(function (feature) {
      var props = feature.properties || {};
      var key = districtKey(props);
      districtsByKey[key] = { region: props.region, code: props.code, name: props.name };
      (byRegion[props.region] = byRegion[props.region] || []).push(districtsByKey[key]);
    });
    var regions = Object.keys(byRegion).sort(function (a, b) {
      return String(regionNames[a] || a).localeCompare(String(regionNames[b] || b), LANG);
    });
    regions.forEach(function (region) {
      var parent = districtSelect;
      if (regions.length > 1) {
        parent = el("optgroup");
        parent.label = String(regionNames[region] || region);
        districtSelect.appendChild(parent);
      }
      byRegion[region]
        .sort(function (a, b) {
          return String(a.name).localeCompare(String(b.name), LANG);
        })
        .forEach(function (district) {
          var option = el("option", null, district.name);
          option.value = districtKey(district);
          parent.appendChild(option);
        });
    });
  }

  function loadDistricts() {
    var zoom = apiZoom();
    var request = districtChannel.start();
    return getJSON(apiUrl(api.districts, { zoom: zoom }), request.signal).then(function (data) {
      if (!districtChannel.isCurrent(request)) {
        return null;
      }
      districtChannel.finish(request);
      var layers = {};
      var layer = L.geoJSON(data, {
        pane: "districts",
        interactive: false,
        style: districtStyle,
        onEachFeature: function (feature, featureLayer) {
          layers[districtKey(feature.properties || {})] = featureLayer;
          featureLayer.on("add", function () {
            var element = featureLayer.getElement && featureLayer.getElement();
            if (element) {
              element.setAttribute("data-level", "district");
              element.setAttribute("data-code", String((feature.properties || {}).code));
            }
          });
        },
      });
      layer.addTo(map);
      if (districtLayer) {
        map.removeLayer(districtLayer);
      }
      districtLayer = layer;
      districtLayers = layers;
      districtZoom = zoom;
      return data;
    });
  }

  // --- incidents: server clusters (low zoom) and points (high zoom) -------------------

  var incidentChannel = new Channel("incidents");
  var statsChannel = new Channel("stats");
  var heatChannel = new Channel("heat");
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
    if (!Array.isArray(bbox) || bbox.length !== 4 || !bbox.every(isFinite)) {
      return null;
    }
    return L.latLngBounds([bbox[1], bbox[0]], [bbox[3], bbox[2]]);
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
          zoom = Math.max(zoom, Math.min(map.getBoundsZoom(extent.pad(0.2)), POINTS_MIN_ZOOM));
          latlng = extent.getCenter();
        }
        map.setView(latlng, Math.min(map.getMaxZoom(), zoom));
      });
      clusterLayer.addLayer(marker);
    });
    return total;
  }

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

  function popupRow(list, term, value) {
    if (value === undefined || value === null || value === "") {
      return;
    }
    list.appendChild(el("dt", null, term));
    list.appendChild(el("dd", null, value));
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
      title.appendChild(sensitiveBadge());
    }
    box.appendChild(title);
    var list = el("dl", "incident-popup-details");
    popupRow(list, labels.when, formatWhen(props));
    popupRow(
      list,
      labels.precision,
      (labels.timePrecision || {})[props.time_precision] || props.time_precision
    );
    popupRow(list, labels.source, props.source);
    popupRow(list, labels.district, props.district_name || props.district || labels.notAssigned);
    popupRow(
      list,
      labels.neighborhood,
      props.neighborhood_name || props.neighborhood || labels.notAssigned
    );
    popupRow(
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

  function clearIncidents() {
    incidentChannel.abort();
    clusterLayer.clearLayers();
    clearPoints();
    mapNode.setAttribute("data-incidents", "0");
    mapNode.setAttribute("data-drawn", "0");
  }

  function loadIncidents(filters, bbox) {
    var zoom = apiZoom();
    var mode = zoom < POINTS_MIN_ZOOM ? "clusters" : "points";
    var request = incidentChannel.start();
    var params = L.extend({}, filters, { bbox: bbox });
    if (mode === "clusters") {
      params.zoom = zoom;
    }
    var url = apiUrl(mode === "clusters" ? api.clusters : api.incidents, params);
    return getJSON(url, request.signal)
      .then(function (data) {
        if (!incidentChannel.isCurrent(request)) {
          return;
        }
        incidentChannel.finish(request);
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
          setStatus(
            format(labels.truncated, { limit: formatNumber(data.limit || drawn) })
          );
        } else {
          setStatus("");
        }
      })
      .catch(function (error) {
        if (incidentChannel.isCurrent(request)) {
          incidentChannel.finish(request);
        }
        if (!isAbort(error)) {
          logError(error);
          setStatus(labels.loadError, true);
        }
      });
  }

  // --- counts per category for the view --------------------------------------------

  var totalNode = document.getElementById("stats-total");
  var countsBody = document.querySelector("#category-counts tbody");

  function renderStats(data) {
    var total = Number(data.total) || 0;
    totalNode.setAttribute("data-total", String(total));
    totalNode.classList.remove("is-loading");
    totalNode.textContent =
      total === 0
        ? labels.noIncidents
        : total === 1
          ? labels.totalOne
          : format(labels.total, { count: formatNumber(total) });
    countsBody.textContent = "";
    (data.by_category || [])
      .filter(function (row) {
        return Number(row.count) > 0;
      })
      .sort(function (a, b) {
        return (
          b.count - a.count ||
          categoryName(a.code, a.name).localeCompare(categoryName(b.code, b.name), LANG)
        );
      })
      .forEach(function (row) {
        var tr = el("tr");
        tr.setAttribute("data-code", String(row.code));
        tr.setAttribute("data-count", String(row.count));
        var th = el("th");
        th.scope = "row";
        var cell = el("span", "count-label");
        var known = categoriesByCode[row.code];
        var family = row.family === "incivility" ? "incivility" : "crime";
        if (known && known.unclassified) {
          family = "unclassified";
        }
        cell.appendChild(el("span", "family-swatch family-" + family));
        cell.appendChild(el("span", "category-name", categoryName(row.code, row.name)));
        if (row.sensitive) {
          cell.appendChild(sensitiveBadge());
        }
        th.appendChild(cell);
        tr.appendChild(th);
        tr.appendChild(el("td", "count", formatNumber(row.count)));
        countsBody.appendChild(tr);
      });
  }

  function loadStats(filters, bbox) {
    var request = statsChannel.start();
    totalNode.classList.add("is-loading");
    var url = apiUrl(api.stats, L.extend({}, filters, { bbox: bbox }));
    return getJSON(url, request.signal)
      .then(function (data) {
        if (!statsChannel.isCurrent(request)) {
          return;
        }
        statsChannel.finish(request);
        renderStats(data);
      })
      .catch(function (error) {
        if (statsChannel.isCurrent(request)) {
          statsChannel.finish(request);
        }
        if (!isAbort(error)) {
          logError(error);
          totalNode.classList.remove("is-loading");
          totalNode.textContent = labels.loadError;
        }
      });
  }

  // --- heat layer --------------------------------------------------------------------

  var heatToggle = document.getElementById("heat-toggle");
  var heatLayer = null;

  function heatOn() {
    return Boolean(heatToggle && heatToggle.checked);
  }

  function clearHeat() {
    heatChannel.abort();
    if (heatLayer) {
      heatLayer.setLatLngs([]);
    }
  }

  function loadHeat(filters, bbox) {
    var zoom = apiZoom();
    var request = heatChannel.start();
    var url = apiUrl(api.heat, L.extend({}, filters, { bbox: bbox, zoom: zoom }));
    return getJSON(url, request.signal)
      .then(function (data) {
        if (!heatChannel.isCurrent(request) || !heatOn()) {
          return;
        }
        heatChannel.finish(request);
        var points = Array.isArray(data.points) ? data.points : [];
        if (!heatLayer) {
          heatLayer = L.heatLayer([], { radius: 25, blur: 18, minOpacity: 0.25 });
        }
        // The server weighs its points for this zoom: draw them at full strength here
        // (Leaflet.heat otherwise fades them by the distance to its maxZoom).
        heatLayer.setOptions({ max: Number(data.max) || 1, maxZoom: map.getZoom() });
        heatLayer.setLatLngs(points);
        if (!map.hasLayer(heatLayer)) {
          heatLayer.addTo(map);
        }
        mapNode.setAttribute("data-heat-points", String(points.length));
      })
      .catch(function (error) {
        if (heatChannel.isCurrent(request)) {
          heatChannel.finish(request);
        }
        if (!isAbort(error)) {
          logError(error);
          setStatus(labels.loadError, true);
        }
      });
  }

  if (heatToggle) {
    heatToggle.addEventListener("change", function () {
      mapNode.setAttribute("data-heat", heatOn() ? "on" : "off");
      if (heatOn()) {
        var filters = currentFilters();
        var bbox = viewBBox();
        if (filters && bbox) {
          loadHeat(filters, bbox);
        }
      } else {
        heatChannel.abort();
        if (heatLayer && map.hasLayer(heatLayer)) {
          map.removeLayer(heatLayer);
        }
        mapNode.removeAttribute("data-heat-points");
      }
    });
  }

  // --- the incidents layer on or off -------------------------------------------------

  var incidentsToggle = document.getElementById("incidents-toggle");

  function incidentsOn() {
    return !incidentsToggle || incidentsToggle.checked;
  }

  function showIncidentsState() {
    mapNode.setAttribute("data-incidents-layer", incidentsOn() ? "on" : "off");
  }
  showIncidentsState();

  if (incidentsToggle) {
    incidentsToggle.addEventListener("change", function () {
      showIncidentsState();
      if (!incidentsOn()) {
        clearIncidents();
        setStatus("");
        return;
      }
      var filters = currentFilters();
      var bbox = viewBBox();
      if (started && filters && bbox) {
        loadIncidents(filters, bbox);
      }
    });
  }

  // --- refreshing ---------------------------------------------------------------------

  var started = false;
  var refreshTimer = null;

  function abortAll() {
    incidentChannel.abort();
    statsChannel.abort();
    heatChannel.abort();
  }

  function refresh() {
    window.clearTimeout(refreshTimer);
    refreshTimer = null;
    var filters = currentFilters();
    updateExportLink(filters);
    var bbox = viewBBox();
    if (!filters || !bbox) {
      clearIncidents();
      clearHeat();
      statsChannel.abort();
      renderStats({ total: 0, by_category: [] });
      return;
    }
    if (incidentsOn()) {
      loadIncidents(filters, bbox);
    } else {
      clearIncidents();
    }
    loadStats(filters, bbox);
    if (heatOn()) {
      loadHeat(filters, bbox);
    }
  }

  function scheduleRefresh() {
    if (!started) {
      return;
    }
    window.clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(refresh, DEBOUNCE_MS);
  }

  // The view is changing: what is in flight is for a view that is going away.
  map.on("movestart", function () {
    if (started) {
      abortAll();
    }
  });

  map.on("moveend", function () {
    if (!started) {
      return;
    }
    writeHash();
    // Boundaries come simplified for the zoom they were asked at: ask again, finer.
    if (districtZoom !== null && apiZoom() > districtZoom + 1 && districtZoom < FULL_DETAIL_ZOOM) {
      loadDistricts().catch(function (error) {
        logError(error);
      });
    }
    scheduleRefresh();
  });

  form.addEventListener("change", function (event) {
    if (event.target === districtSelect) {
      restyleDistricts();
      // To the chosen district, or back to all of them (moveend refreshes too; the
      // refresh below covers a view that does not move).
      var layer = districtSelect.value ? districtLayers[districtSelect.value] : districtLayer;
      var bounds = layer && layer.getBounds();
      if (bounds && bounds.isValid()) {
        map.fitBounds(bounds, fitOptions(bounds));
      }
    }
    scheduleRefresh();
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    refresh();
  });

  form.addEventListener("reset", function () {
    // The form resets its fields after this event: read them on the next turn.
    window.setTimeout(function () {
      toInput.min = "";
      fromInput.max = "";
      groupsNode.querySelectorAll("fieldset.category-group").forEach(syncGroupToggle);
      restyleDistricts();
      scheduleRefresh();
    }, 0);
  });

  // --- hotspot runs: cells by Gi* bin, zones, kernel density, emerging categories -----
  //
  // The run shown is the newest succeeded run of the region in view (or ?run=ID). Its
  // method decides the cell layer: Gi* bins, a density ramp, or emerging categories with
  // a time slider over the run's steps (each step coloured by its own Gi* bins). Cells
  // are drawn on a canvas (thousands of them); zones are SVG paths with a popup of their
  // figures. The "Run analysis" form starts a run through the API and follows its
  // progress until the layers can be drawn.

  var hs = config.hotspots || {};
  var hsLabels = labels.hotspots || {};
  var hsNode = function (id) {
    return document.getElementById(id);
  };
  var hsRunSelect = hsNode("hotspot-run");
  var hsInfo = hsNode("hotspot-run-info");
  var hsCellsToggle = hsNode("hotspot-cells-toggle");
  var hsZonesToggle = hsNode("hotspot-zones-toggle");
  var hsStepBox = hsNode("hotspot-step-box");
  var hsStep = hsNode("hotspot-step");
  var hsStepLabel = hsNode("hotspot-step-label");
  var hsLegend = hsNode("hotspot-legend");
  var hsLegendTitle = hsNode("hotspot-legend-title");
  var hsLegendItems = hsNode("hotspot-legend-items");
  var hsZoneHint = hsNode("hotspot-zone-hint");
  var hsCellsLabel = hsNode("hotspot-cells-label");
  var hsZonesLabel = hsNode("hotspot-zones-label");
  var hsForm = hsNode("hotspot-form");

  map.createPane("hotspotCells").style.zIndex = "360"; // over districts, under the heat map
  map.createPane("hotspotZones").style.zIndex = "610"; // over the incident clusters (see above)
  var hsCellRenderer = L.canvas({ pane: "hotspotCells", padding: 0.3 });
  var hsZoneRenderer = L.svg({ pane: "hotspotZones" });
  var hsCellChannel = new Channel("hotspotCells");
  var hsZoneChannel = new Channel("hotspotZones");
  var hsRun = null; // the detail of the run shown
  var hsCellLayer = null;
  var hsZoneLayer = null;
  var hsCellMeta = {}; // members of the last cell response (steps, max_density...)
  // The area and zoom the drawn cells were asked for: a whole region's density surface
  // is megabytes, so cells come for the view (with a margin) and again when it leaves it.
  var hsCellView = null;
  var CELL_MARGIN = 0.5; // half a view on each side: small pans need no request
  var hsRegions = [];

  var CELL_ENDPOINT = { gistar: "cells", kde: "kde", emerging: "emerging" };

  function runUrl(id, suffix) {
    return String(hs.runsUrl) + encodeURIComponent(String(id)) + "/" + (suffix || "");
  }

  function runPageUrl(id) {
    return String(hs.runPage || "").replace(/\/0\/$/, "/" + encodeURIComponent(String(id)) + "/");
  }

  function stepDate(value) {
    var date = new Date(String(value) + "T00:00:00Z");
    if (isNaN(date.getTime())) {
      return String(value);
    }
    var options =
      hsRun && hsRun.params && hsRun.params.step === "week"
        ? { dateStyle: "medium", timeZone: "UTC" }
        : { year: "numeric", month: "long", timeZone: "UTC" };
    return new Intl.DateTimeFormat(LANG, options).format(date);
  }

  function currentStep() {
    return hsStepBox && !hsStepBox.hidden ? Number(hsStep.value) || 0 : 0;
  }

  function binEntry(bin) {
    var found = null;
    (hs.bins || []).forEach(function (entry) {
      if (entry.bin === bin) {
        found = entry;
      }
    });
    return found;
  }

  function emergingEntry(code) {
    var found = null;
    (hs.emerging || []).forEach(function (entry) {
      if (entry.code === code) {
        found = entry;
      }
    });
    return found;
  }

  function densityColour(value) {
    var ramp = hs.densityRamp || ["#fd8d3c"];
    var top = Number(hsCellMeta.max_density) || 0;
    var share = top > 0 ? Math.max(0, Math.min(1, Number(value) / top)) : 0;
    return ramp[Math.min(ramp.length - 1, Math.floor(share * ramp.length))];
  }

  /* Fill colour of a cell for the run's method and the slider's step; null: not drawn. */
  function cellColour(props) {
    var method = hsRun && hsRun.method;
    if (method === "kde") {
      return densityColour(props.density);
    }
    if (method === "emerging") {
      var step = currentStep();
      if (step > 0) {
        var bins = props.step_bins || [];
        var bin = Number(bins[step - 1]) || 0;
        return bin ? (hs.binColours || {})[String(bin)] : null;
      }
      var entry = emergingEntry(Number(props.emerging) || 0);
      return props.emerging && entry ? entry.colour : null;
    }
    var colour = (hs.binColours || {})[String(props.gi_bin)];
    return props.gi_bin ? colour : null;
  }

  function cellStyle(feature) {
    var colour = cellColour(feature.properties || {});
    if (!colour) {
      return { stroke: false, fill: false };
    }
    return {
      stroke: true,
      fill: true,
      color: colour,
      weight: 0.5,
      opacity: 0.9,
      fillColor: colour,
      fillOpacity: 0.65,
    };
  }

  function detailsList(rows) {
    var list = el("dl", "incident-popup-details");
    rows.forEach(function (row) {
      popupRow(list, row[0], row[1]);
    });
    return list;
  }

  function cellPopup(props) {
    var box = el("div", "hotspot-popup hotspot-cell-popup");
    box.appendChild(el("h3", "incident-popup-title", hsLabels.cell));
    var rows = [[hsLabels.incidents, formatNumber(Number(props.count) || 0)]];
    var method = hsRun && hsRun.method;
    if (method === "kde") {
      rows.push([
        hsLabels.density,
        format(hsLabels.perKm2, { value: formatNumber(Math.round(Number(props.density) || 0)) }),
      ]);
    } else if (method === "emerging") {
      var entry = emergingEntry(Number(props.emerging) || 0);
      rows.push([hsLabels.pattern, entry ? entry.label : props.emerging_label]);
      var step = currentStep();
      if (step > 0) {
        var bin = binEntry(Number((props.step_bins || [])[step - 1]) || 0);
        var steps = hsCellMeta.steps || [];
        rows.push([stepDate(steps[step - 1]), bin ? bin.label : ""]);
      }
    } else {
      var z = Number(props.gi_z);
      rows.push([hsLabels.giZ, isFinite(z) ? z.toFixed(2) : ""]);
      var found = binEntry(Number(props.gi_bin) || 0);
      rows.push(["", found ? found.label : ""]);
    }
    box.appendChild(detailsList(rows));
    return box;
  }

  function zonePopup(props) {
    var box = el("div", "hotspot-popup hotspot-zone-popup");
    box.setAttribute("data-rank", String(props.rank));
    box.appendChild(el("h3", "incident-popup-title", format(hsLabels.zone, { rank: props.rank })));
    var areaKm2 = (Number(props.area_m2) || 0) / 1e6;
    var tops = (props.top_categories || []).slice(0, 5).map(function (item) {
      return categoryName(item.code) + " (" + formatNumber(Number(item.count) || 0) + ")";
    });
    box.appendChild(
      detailsList([
        [hsLabels.rank, String(props.rank)],
        [hsLabels.incidents, formatNumber(Number(props.incident_count) || 0)],
        [hsLabels.area, formatNumber(Math.round(areaKm2 * 100) / 100) + " km²"],
        [
          hsLabels.density,
          format(hsLabels.perKm2, {
            value: formatNumber(Math.round(Number(props.density_per_km2) || 0)),
          }),
        ],
        [hsLabels.share, formatNumber(Math.round((Number(props.share) || 0) * 1000) / 10) + " %"],
        [hsLabels.topCategories, tops.join(", ")],
      ])
    );
    if (hsRun) {
      var link = el("a", "hotspot-run-link", hsLabels.runPageLink);
      link.href = runPageUrl(hsRun.id);
      box.appendChild(link);
    }
    return box;
  }

  function legendItem(colour, text, extraClass) {
    var item = el("li", extraClass || null);
    var swatch = el("span", "legend-swatch hotspot-swatch");
    swatch.style.background = colour;
    swatch.setAttribute("aria-hidden", "true");
    item.appendChild(swatch);
    item.appendChild(el("span", null, text));
    return item;
  }

  function runHasZones(run) {
    return Boolean(run) && Number((run.summary || {}).zones) > 0;
  }

  /* Only the toggles of the layers the run has: DBSCAN draws no cells, KDE and
     emerging runs no zones. */
  function showLayerToggles(run) {
    hsCellsLabel.hidden = Boolean(run) && !CELL_ENDPOINT[run.method];
    hsZonesLabel.hidden = Boolean(run) && !runHasZones(run);
  }

  function renderLegend() {
    if (!hsLegend) {
      return;
    }
    hsLegendItems.textContent = "";
    if (!hsRun) {
      hsLegend.hidden = true;
      return;
    }
    var method = hsRun.method;
    var step = currentStep();
    var steps = hsCellMeta.steps || [];
    if (method === "kde") {
      hsLegendTitle.textContent = hsLabels.densityTitle;
      var ramp = hs.densityRamp || [];
      var top = Number(hsCellMeta.max_density) || 0;
      ramp.forEach(function (colour, index) {
        var low = (top * index) / ramp.length;
        var high = (top * (index + 1)) / ramp.length;
        hsLegendItems.appendChild(
          legendItem(colour, formatNumber(Math.round(low)) + "–" + formatNumber(Math.round(high)))
        );
      });
    } else if (method === "emerging" && step === 0) {
      hsLegendTitle.textContent = hsLabels.emergingTitle;
      (hs.emerging || []).forEach(function (entry) {
        if (entry.code !== 0) {
          hsLegendItems.appendChild(legendItem(entry.colour, entry.label, "emerging-" + entry.key));
        }
      });
    } else if (method !== "dbscan") {
      hsLegendTitle.textContent =
        method === "emerging" && step > 0
          ? format(hsLabels.stepTitle, { step: stepDate(steps[step - 1]) })
          : hsLabels.binsTitle;
      (hs.bins || []).forEach(function (entry) {
        if (entry.bin !== 0) {
          hsLegendItems.appendChild(legendItem(entry.colour, entry.label, "bin-" + entry.bin));
        }
      });
    } else {
      hsLegendTitle.textContent = "";
    }
    // KDE and emerging runs have no zones: no hint about clicking one.
    hsZoneHint.hidden = !runHasZones(hsRun);
    hsLegend.hidden = false;
    mapNode.setAttribute("data-hotspot-legend", method);
  }

  function clearHotspotLayers() {
    hsCellChannel.abort();
    hsZoneChannel.abort();
    [hsCellLayer, hsZoneLayer].forEach(function (layer) {
      if (layer && map.hasLayer(layer)) {
        map.removeLayer(layer);
      }
    });
    hsCellLayer = null;
    hsZoneLayer = null;
    hsCellMeta = {};
    hsCellView = null;
    mapNode.removeAttribute("data-hotspot-cells");
    mapNode.removeAttribute("data-hotspot-zones");
  }

  function drawnCount(layer) {
    var count = 0;
    layer.eachLayer(function (featureLayer) {
      if (cellColour(featureLayer.feature.properties || {})) {
        count += 1;
      }
    });
    return count;
  }

  function loadCells() {
    var endpoint = hsRun && CELL_ENDPOINT[hsRun.method];
    if (!endpoint || !hsCellsToggle.checked) {
      return Promise.resolve();
    }
    var run = hsRun;
    var params = {};
    if (run.method === "gistar") {
      params.significant = "true";
    } else if (run.method === "kde") {
      params.min_density = "0.01";
    }
    var area = map.getBounds().pad(CELL_MARGIN);
    var zoom = apiZoom();
    params.bbox = boundsBBox(area);
    params.zoom = zoom;
    if (!params.bbox) {
      return Promise.resolve();
    }
    var request = hsCellChannel.start();
    return getJSON(apiUrl(runUrl(run.id, endpoint + "/"), params), request.signal)
      .then(function (data) {
        if (!hsCellChannel.isCurrent(request) || hsRun !== run) {
          return;
        }
        hsCellChannel.finish(request);
        hsCellMeta = data;
        hsCellView = { bounds: area, zoom: zoom, truncated: Boolean(data.truncated) };
        var layer = L.geoJSON(data, {
          renderer: hsCellRenderer,
          style: cellStyle,
          onEachFeature: function (feature, featureLayer) {
            featureLayer.bindPopup(function () {
              return cellPopup(feature.properties || {});
            });
          },
        });
        if (hsCellLayer) {
          map.removeLayer(hsCellLayer);
        }
        hsCellLayer = layer.addTo(map);
        mapNode.setAttribute("data-hotspot-cells", String(drawnCount(layer)));
        if (data.truncated) {
          setStatus(hsLabels.truncated);
        }
        renderLegend();
      })
      .catch(function (error) {
        if (hsCellChannel.isCurrent(request)) {
          hsCellChannel.finish(request);
        }
        if (!isAbort(error)) {
          logError(error);
          setStatus(hsLabels.loadError, true);
        }
      });
  }

  function loadZones() {
    if (!hsRun || !hsZonesToggle.checked) {
      return Promise.resolve();
    }
    var run = hsRun;
    var request = hsZoneChannel.start();
    return getJSON(apiUrl(runUrl(run.id, "zones/"), {}), request.signal)
      .then(function (data) {
        if (!hsZoneChannel.isCurrent(request) || hsRun !== run) {
          return;
        }
        hsZoneChannel.finish(request);
        var layer = L.geoJSON(data, {
          renderer: hsZoneRenderer,
          style: function () {
            return {
              color: hs.zoneColour || "#5a1846",
              weight: 2.5,
              opacity: 0.95,
              fillColor: hs.zoneColour || "#5a1846",
              fillOpacity: 0.06,
            };
          },
          onEachFeature: function (feature, featureLayer) {
            var props = feature.properties || {};
            featureLayer.bindPopup(
              function () {
                return zonePopup(props);
              },
              { className: "incident-popup-wrap", maxWidth: 320, autoPanPadding: [16, 16] }
            );
            featureLayer.on("add", function () {
              var element = featureLayer.getElement && featureLayer.getElement();
              if (element) {
                element.setAttribute("data-zone-rank", String(props.rank));
                element.classList.add("hotspot-zone");
              }
            });
          },
        });
        if (hsZoneLayer) {
          map.removeLayer(hsZoneLayer);
        }
        hsZoneLayer = layer.addTo(map);
        mapNode.setAttribute("data-hotspot-zones", String((data.features || []).length));
      })
      .catch(function (error) {
        if (hsZoneChannel.isCurrent(request)) {
          hsZoneChannel.finish(request);
        }
        if (!isAbort(error)) {
          logError(error);
          setStatus(hsLabels.loadError, true);
        }
      });
  }

  function setupStepSlider() {
    var steps = (hsRun && hsRun.method === "emerging" && hsRun.params && hsRun.params.steps) || [];
    hsStepBox.hidden = !steps.length;
    hsStep.max = String(steps.length);
    hsStep.value = "0";
    updateStepLabel();
  }

  function updateStepLabel() {
    var step = currentStep();
    var steps = (hsRun && hsRun.params && hsRun.params.steps) || [];
    hsStepLabel.textContent = step > 0 ? stepDate(steps[step - 1]) : hsLabels.wholePeriod;
    mapNode.setAttribute("data-hotspot-step", String(step));
  }

  function showRunInfo(run) {
    hsInfo.textContent = "";
    if (!run) {
      hsInfo.hidden = true;
      return;
    }
    var summary = run.summary || {};
    hsInfo.appendChild(
      document.createTextNode(
        format(hsLabels.runInfo, {
          incidents: formatNumber(Number(summary.incidents) || 0),
          zones: formatNumber(Number(summary.zones) || 0),
        }) + " "
      )
    );
    var link = el("a", "hotspot-run-link", hsLabels.runPageLink);
    link.href = runPageUrl(run.id);
    hsInfo.appendChild(link);
    hsInfo.hidden = false;
  }

  function showRun(id, fit) {
    clearHotspotLayers();
    hsRun = null;
    mapNode.setAttribute("data-hotspot-run", id ? String(id) : "");
    if (!id) {
      showRunInfo(null);
      showLayerToggles(null);
      renderLegend();
      hsStepBox.hidden = true;
      return Promise.resolve();
    }
    return getJSON(runUrl(id, ""))
      .then(function (run) {
        if (String(hsRunSelect.value) !== String(run.id)) {
          return;
        }
        hsRun = run;
        showRunInfo(run);
        showLayerToggles(run);
        setupStepSlider();
        prefillForm(run);
        renderLegend();
        if (fit && Array.isArray(run.bbox) && run.bbox.length === 4) {
          var b = run.bbox;
          var bounds = L.latLngBounds([b[1], b[0]], [b[3], b[2]]);
          map.fitBounds(bounds, L.extend(fitOptions(bounds), { animate: false }));
        }
        return Promise.all([loadCells(), loadZones()]);
      })
      .catch(function (error) {
        logError(error);
        setStatus(hsLabels.loadError, true);
      });
  }

  function runOption(run) {
    var option = el(
      "option",
      null,
      format(hsLabels.runOption, {
        id: run.id,
        method: run.method_label,
        region: run.region_name,
        start: run.date_from,
        end: run.date_to,
      })
    );
    option.value = String(run.id);
    option.setAttribute("data-region", String(run.region));
    return option;
  }

  /* The region whose extent holds the centre of the view (the district filter's region
     when one is chosen). */
  function regionInView() {
    var district = districtSelect.value ? districtsByKey[districtSelect.value] : null;
    if (district) {
      return district.region;
    }
    var centre = map.getCenter();
    var found = null;
    hsRegions.forEach(function (region) {
      var b = region.bbox;
      if (!found && Array.isArray(b) && b.length === 4) {
        if (L.latLngBounds([b[1], b[0]], [b[3], b[2]]).contains(centre)) {
          found = region.code;
        }
      }
    });
    return found;
  }

  function loadRunList() {
    return getJSON(apiUrl(hs.runsUrl, { status: "succeeded", limit: 100 })).then(
      function (page) {
        var runs = (page && page.results) || [];
        runs.forEach(function (run) {
          hsRunSelect.appendChild(runOption(run));
        });
        return runs;
      }
    );
  }

  function chooseInitialRun(runs) {
    var wanted = new URLSearchParams(window.location.search).get("run");
    if (wanted && /^\d+$/.test(wanted)) {
      if (!runs.some(function (run) { return String(run.id) === wanted; })) {
        var option = el("option", null, "#" + wanted);
        option.value = wanted;
        hsRunSelect.appendChild(option);
      }
      hsRunSelect.value = wanted;
      return showRun(wanted, true);
    }
    if (!runs.length) {
      hsInfo.textContent = hsLabels.noRuns;
      hsInfo.hidden = false;
      return Promise.resolve();
    }
    var region = regionInView();
    var pick = runs.filter(function (run) {
      return run.region === region;
    })[0] || runs[0];
    hsRunSelect.value = String(pick.id);
    return showRun(pick.id, false);
  }

  hsRunSelect.addEventListener("change", function () {
    showRun(hsRunSelect.value, true);
  });
  hsCellsToggle.addEventListener("change", function () {
    if (hsCellsToggle.checked) {
      loadCells();
    } else {
      hsCellChannel.abort();
      if (hsCellLayer) {
        map.removeLayer(hsCellLayer);
        hsCellLayer = null;
      }
      mapNode.setAttribute("data-hotspot-cells", "0");
    }
  });
  hsZonesToggle.addEventListener("change", function () {
    if (hsZonesToggle.checked) {
      loadZones();
    } else {
      hsZoneChannel.abort();
      if (hsZoneLayer) {
        map.removeLayer(hsZoneLayer);
        hsZoneLayer = null;
      }
      mapNode.setAttribute("data-hotspot-zones", "0");
    }
  });
  hsStep.addEventListener("input", function () {
    updateStepLabel();
    if (hsCellLayer) {
      hsCellLayer.setStyle(cellStyle);
      mapNode.setAttribute("data-hotspot-cells", String(drawnCount(hsCellLayer)));
    }
    renderLegend();
  });
  /* The drawn cells still serve the view: it is inside the area they were asked for,
     at their zoom (the server trims coordinates to the zoom), and none were left out. */
  function cellsCoverView() {
    return (
      hsCellView !== null &&
      !hsCellView.truncated &&
      hsCellView.zoom === apiZoom() &&
      hsCellView.bounds.contains(map.getBounds())
    );
  }

  map.on("moveend", function () {
    if (hsRun && hsCellsToggle.checked && CELL_ENDPOINT[hsRun.method] && !cellsCoverView()) {
      loadCells();
    }
  });

  // --- "Run analysis": start a run through the API and follow it ------------------

  var hsMethod = hsNode("hotspot-method");
  var hsRegionSelect = hsNode("hotspot-region");
  var hsDistrictSelect = hsNode("hotspot-district");
  var hsFrom = hsNode("hotspot-from");
  var hsTo = hsNode("hotspot-to");
  var hsFormError = hsNode("hotspot-form-error");
  var hsSubmit = hsNode("hotspot-submit");
  var hsProgressBox = hsNode("hotspot-progress-box");
  var hsProgress = hsNode("hotspot-progress");
  var hsProgressText = hsNode("hotspot-progress-text");
  var hsDbscanHint = hsNode("hotspot-dbscan-hint");

  function showMethodFields() {
    var method = hsMethod.value;
    var params = (hs.params || {})[method] || [];
    hsForm.querySelectorAll("[data-param]").forEach(function (field) {
      field.hidden = params.indexOf(field.getAttribute("data-param")) < 0;
    });
    // Density clustering over a whole metro area chains every hotspot into one cluster.
    hsDbscanHint.hidden = method !== "dbscan";
    hsDbscanHint.classList.toggle("is-warning", method === "dbscan" && !hsDistrictSelect.value);
  }

  function fillRunDistricts() {
    var region = hsRegionSelect.value;
    var keep = hsDistrictSelect.value;
    while (hsDistrictSelect.options.length > 1) {
      hsDistrictSelect.remove(1);
    }
    Object.keys(districtsByKey)
      .map(function (key) {
        return districtsByKey[key];
      })
      .filter(function (district) {
        return district.region === region;
      })
      .sort(function (a, b) {
        return String(a.name).localeCompare(String(b.name), LANG);
      })
      .forEach(function (district) {
        var option = el("option", null, district.name);
        option.value = district.code;
        hsDistrictSelect.appendChild(option);
      });
    hsDistrictSelect.value = keep;
    if (hsDistrictSelect.value !== keep) {
      hsDistrictSelect.value = "";
    }
  }

  function prefillForm(run) {
    if (!hsFrom.value && !hsTo.value) {
      hsFrom.value = run.date_from;
      hsTo.value = run.date_to;
    }
    if (run.region && hsRegionSelect.value !== run.region) {
      hsRegionSelect.value = run.region;
      fillRunDistricts();
    }
  }

  function formError(text) {
    hsFormError.textContent = text || "";
    hsFormError.hidden = !text;
  }

  function errorText(body) {
    if (!body || typeof body !== "object") {
      return "";
    }
    return Object.keys(body)
      .map(function (field) {
        var messages = Array.isArray(body[field]) ? body[field] : [body[field]];
        var text = messages
          .map(function (message) {
            return typeof message === "string" ? message : JSON.stringify(message);
          })
          .join(" ");
        return field === "non_field_errors" || field === "detail" ? text : field + ": " + text;
      })
      .join(" · ");
  }

  function requestBody() {
    var method = hsMethod.value;
    var allowed = (hs.params || {})[method] || [];
    var params = {};
    hsForm.querySelectorAll("[data-param]").forEach(function (field) {
      var name = field.getAttribute("data-param");
      var input = field.querySelector("input, select");
      if (allowed.indexOf(name) < 0 || !input || input.value === "") {
        return;
      }
      params[name] = input.type === "number" ? Number(input.value) : input.value;
    });
    var body = {
      region: hsRegionSelect.value,
      method: method,
      date_from: hsFrom.value,
      date_to: hsTo.value,
      params: params,
    };
    var family = hsForm.querySelector("[name=family]").value;
    if (family) {
      body.family = family;
    }
    if (hsDistrictSelect.value) {
      body.districts = [hsDistrictSelect.value];
    }
    return body;
  }

  function showProgress(run) {
    hsProgressBox.hidden = false;
    if (run.status === "running") {
      hsProgress.value = Number(run.progress) || 0;
      hsProgressText.textContent = format(hsLabels.running, {
        percent: Math.round(100 * (Number(run.progress) || 0)) + "\u00a0%",
      });
    } else {
      hsProgress.removeAttribute("value");
      hsProgressText.textContent = hsLabels.queued;
    }
    mapNode.setAttribute("data-hotspot-job", run.status);
  }

  function finishRun(run, reused) {
    hsSubmit.disabled = false;
    mapNode.setAttribute("data-hotspot-job", run.status);
    hsProgress.value = 1;
    if (run.status !== "succeeded") {
      hsProgressText.textContent = format(hsLabels.failed, { message: run.message || "" });
      hsProgressText.classList.add("is-error");
      return;
    }
    hsProgressText.classList.remove("is-error");
    hsProgressText.textContent = format(reused ? hsLabels.reused : hsLabels.succeeded, {
      id: run.id,
    });
    mapNode.setAttribute("data-hotspot-reused", reused ? "true" : "false");
    var listed = hsRunSelect.querySelector('option[value="' + String(Number(run.id)) + '"]');
    if (!listed) {
      hsRunSelect.insertBefore(runOption(run), hsRunSelect.options[1] || null);
    }
    hsRunSelect.value = String(run.id);
    showRun(run.id, true);
  }

  function follow(run) {
    if (run.finished) {
      finishRun(run);
      return;
    }
    showProgress(run);
    window.setTimeout(function () {
      getJSON(runUrl(run.id, ""))
        .then(follow)
        .catch(function (error) {
          logError(error);
          hsProgressText.textContent = hsLabels.pollError;
          window.setTimeout(function () {
            follow(run);
          }, hs.pollMs || 1000);
        });
    }, hs.pollMs || 1000);
  }

  hsMethod.addEventListener("change", showMethodFields);
  hsDistrictSelect.addEventListener("change", showMethodFields);
  hsRegionSelect.addEventListener("change", fillRunDistricts);

  hsForm.addEventListener("submit", function (event) {
    event.preventDefault();
    formError("");
    if (!hsFrom.value || !hsTo.value) {
      formError(hsLabels.needDates);
      return;
    }
    var token = hsForm.querySelector("input[name=csrfmiddlewaretoken]");
    hsSubmit.disabled = true;
    hsProgressText.classList.remove("is-error");
    mapNode.setAttribute("data-hotspot-job", "starting");
    fetch(hs.runsUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": token ? token.value : "",
      },
      body: JSON.stringify(requestBody()),
    })
      .then(function (response) {
        return response.json().then(function (body) {
          return { ok: response.ok, body: body };
        });
      })
      .then(function (result) {
        if (!result.ok) {
          hsSubmit.disabled = false;
          mapNode.setAttribute("data-hotspot-job", "refused");
          formError(hsLabels.submitError + " " + errorText(result.body));
          return;
        }
        if (result.body.reused) {
          hsProgressBox.hidden = false;
          finishRun(result.body, true);
          return;
        }
        follow(result.body);
      })
      .catch(function (error) {
        logError(error);
        hsSubmit.disabled = false;
        formError(hsLabels.submitError);
      });
  });

  function initHotspots(regions, regionNames) {
    hsRegions = regions;
    regions.forEach(function (region) {
      var option = el("option", null, regionNames[region.code] || region.code);
      option.value = region.code;
      hsRegionSelect.appendChild(option);
    });
    fillRunDistricts();
    showMethodFields();
    return loadRunList()
      .then(chooseInitialRun)
      .catch(function (error) {
        logError(error);
        setStatus(hsLabels.loadError, true);
      });
  }

  // --- start-up -----------------------------------------------------------------------

  var syntheticNotice = document.getElementById("synthetic-notice");

  function fitRegions(regions) {
    var bounds = null;
    regions.forEach(function (region) {
      var b = region.bbox;
      if (!Array.isArray(b) || b.length !== 4) {
        return;
      }
      var extent = L.latLngBounds([b[1], b[0]], [b[3], b[2]]);
      bounds = bounds ? bounds.extend(extent) : extent;
    });
    if (syntheticNotice && regions.some(function (r) { return r.synthetic; })) {
      syntheticNotice.hidden = false;
    }
    var view = viewFromHash();
    if (view) {
      map.setView(view.center, view.zoom, { animate: false });
    } else if (bounds && bounds.isValid()) {
      map.fitBounds(bounds, L.extend(fitOptions(bounds), { animate: false }));
    }
  }

  function start() {
    var regionNames = {};
    var regionList = [];
    var regions = getJSON(api.regions).then(function (list) {
      list = Array.isArray(list) ? list : [];
      list.forEach(function (region) {
        regionNames[region.code] = region.name;
      });
      regionList = list;
      fitRegions(list);
      return list;
    });
    var categories = getJSON(api.categories).then(function (list) {
      buildCategoryFilter(Array.isArray(list) ? list : []);
    });
    Promise.all([regions, categories])
      .then(function () {
        started = true;
        recordView();
        writeHash();
        refresh();
        return loadDistricts()
          .then(
            function (data) {
              var features = (data && data.features) || [];
              fillDistrictSelect(features, regionNames);
              mapNode.setAttribute("data-districts", String(features.length));
            },
            function (error) {
              logError(error);
              setStatus(labels.boundaryError, true);
            }
          )
          .then(function () {
            return initHotspots(regionList, regionNames);
          });
      })
      .catch(function (error) {
        logError(error);
        setStatus(labels.loadError, true);
      });
  }

  start();
})();
