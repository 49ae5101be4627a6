/*
 * Barrio public map: regions, districts and (zoomed in) neighborhoods from /api/v1/.
 *
 * Settings and translated labels come from the page (json_script). Every string that
 * comes from data (area names, attributions) reaches the DOM as text: textContent,
 * DOM nodes for tooltips, or HTML-escaped where Leaflet only takes HTML (attribution).
 * With no tile URL configured there is no tile layer and the page talks only to its
 * own origin.
 */
import {
  apiUrl,
  apiZoom as commonApiZoom,
  bboxBounds,
  chosenRegion,
  watchRegionPicker,
  createMap,
  definitionRow,
  el,
  foldOnSmallScreens,
  format,
  getJSON,
  isAbort,
  logError,
  mapPage,
  readJSON,
  statusSetter,
  tagLayer,
  viewBBox as commonViewBBox,
} from "./common.js";

function main(config, labels, mapNode) {

  var MAX_API_ZOOM = 24;
  var FULL_DETAIL_ZOOM = 16; // the API stops simplifying geometry from this zoom on
  var NEIGHBORHOOD_MIN_ZOOM = config.neighborhoodMinZoom || 12;
  var MAX_SUGGESTIONS = 8;

  var STYLES = {
    region: {
      pane: "regions",
      interactive: false,
      fill: false,
      color: "#4a3b7a",
      weight: 2,
      opacity: 0.8,
      dashArray: "8 6",
    },
    district: {
      color: "#1f5f8b",
      weight: 2,
      opacity: 0.9,
      fillColor: "#4f9bd1",
      fillOpacity: 0.12,
    },
    districtHover: { weight: 3.5, fillOpacity: 0.28 },
    districtSelected: { color: "#0b3557", weight: 4, fillOpacity: 0.3 },
    neighborhood: {
      color: "#c0561b",
      weight: 1.2,
      opacity: 0.9,
      fillColor: "#f29a5c",
      fillOpacity: 0.06,
    },
    neighborhoodHover: { weight: 2.5, fillOpacity: 0.3 },
    // District borders drawn again above the neighborhoods, so they stay visible.
    districtOutline: {
      fill: false,
      color: "#1f5f8b",
      weight: 2.5,
      opacity: 0.9,
    },
  };

  // --- small helpers -------------------------------------------------------------

  /* Accent-, case- and space-insensitive key, like neighborhoods.text.normalize_name. */
  function normalize(text) {
    return String(text)
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/\s+/g, " ")
      .trim();
  }

  function apiZoom() {
    return commonApiZoom(map, MAX_API_ZOOM);
  }
  function viewBBox() {
    return commonViewBBox(map);
  }
  var setStatus = statusSetter(document.getElementById("map-status"));

  // --- map, panes, controls ------------------------------------------------------

  var map = createMap(mapNode, config, labels);

  [
    ["regions", 390],
    ["districts", 410],
    ["neighborhoods", 420],
    ["districtOutlines", 430],
  ].forEach(function (pane) {
    map.createPane(pane[0]).style.zIndex = String(pane[1]);
  });

  foldOnSmallScreens(document.getElementById("map-legend"), "(max-width: 640px)");

  // --- tooltips -----------------------------------------------------------------

  var regionsByCode = {};

  function isSynthetic(regionCode) {
    var region = regionsByCode[regionCode];
    return Boolean(region && region.synthetic);
  }

  function tooltipContent(kind, name, detail, regionCode) {
    var box = document.createElement("div");
    box.className = "area-tooltip";
    var kindNode = document.createElement("span");
    kindNode.className = "area-tooltip-kind";
    kindNode.textContent = kind;
    var nameNode = document.createElement("strong");
    nameNode.className = "area-tooltip-name";
    nameNode.textContent = name;
    box.appendChild(kindNode);
    box.appendChild(nameNode);
    if (detail) {
      var detailNode = document.createElement("span");
      detailNode.className = "area-tooltip-detail";
      detailNode.textContent = detail;
      box.appendChild(detailNode);
    }
    if (isSynthetic(regionCode)) {
      var badge = document.createElement("span");
      badge.className = "badge badge-synthetic";
      badge.textContent = labels.syntheticBadge;
      box.appendChild(badge);
    }
    return box;
  }

  /* Level and code on each drawn path (as attributes, never markup): handy for styling
     and for the browser tests. */
  function tagPath(featureLayer, level, code) {
    tagLayer(featureLayer, { "data-level": level, "data-code": code == null ? "" : code });
  }

  // --- districts ----------------------------------------------------------------

  var districtLayer = null;
  var districtOutlineLayer = null;
  var districtZoom = null;
  var districtRequest = null;
  var districtIndex = [];
  var selected = null; // {region, code} of the district picked in the search box

  function isSelected(props) {
    return Boolean(selected && props.region === selected.region && props.code === selected.code);
  }

  function districtStyle(feature) {
    var props = feature.properties || {};
    return L.extend({}, STYLES.district, isSelected(props) ? STYLES.districtSelected : {});
  }

  function districtOutlineStyle(feature) {
    var props = feature.properties || {};
    return L.extend(
      {},
      STYLES.districtOutline,
      isSelected(props) ? { color: STYLES.districtSelected.color, weight: 4 } : {}
    );
  }

  function restyleDistricts() {
    [districtLayer, districtOutlineLayer].forEach(function (group) {
      if (group) {
        group.eachLayer(function (featureLayer) {
          group.resetStyle(featureLayer);
        });
      }
    });
  }

  function buildDistrictLayer(data) {
    var index = [];
    var layer = L.geoJSON(data, {
      pane: "districts",
      style: districtStyle,
      onEachFeature: function (feature, featureLayer) {
        var props = feature.properties || {};
        var name = props.name == null ? "" : String(props.name);
        featureLayer.bindTooltip(tooltipContent(labels.district, name, null, props.region), {
          sticky: true,
          direction: "top",
          offset: [0, -8],
          className: "area-tooltip-wrap",
        });
        featureLayer.on("mouseover", function () {
          featureLayer.setStyle(STYLES.districtHover);
        });
        featureLayer.on("mouseout", function () {
          layer.resetStyle(featureLayer);
        });
        featureLayer.on("add", function () {
          tagPath(featureLayer, "district", props.code);
        });
        index.push({ name: name, key: normalize(name), props: props, layer: featureLayer });
      },
    });
    index.sort(function (a, b) {
      return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
    });
    var outline = L.geoJSON(data, {
      pane: "districtOutlines",
      interactive: false,
      style: districtOutlineStyle,
    });
    return { layer: layer, outline: outline, index: index };
  }

  function loadDistricts() {
    var zoom = apiZoom();
    if (districtRequest) {
      districtRequest.abort();
    }
    var request = new AbortController();
    districtRequest = request;
    return getJSON(apiUrl(config.api.districts, { zoom: zoom }), request.signal).then(
      function (data) {
        if (districtRequest !== request) {
          return;
        }
        districtRequest = null;
        var built = buildDistrictLayer(data);
        built.layer.addTo(map);
        built.outline.addTo(map);
        if (districtLayer) {
          map.removeLayer(districtLayer);
          map.removeLayer(districtOutlineLayer);
        }
        districtLayer = built.layer;
        districtOutlineLayer = built.outline;
        districtIndex = built.index;
        districtZoom = zoom;
        if (data.truncated) {
          setStatus(labels.truncated);
        }
        return data;
      }
    );
  }

  // --- neighborhoods ------------------------------------------------------------

  var neighborhoodLayer = null;
  var neighborhoodRequest = null;

  function clearNeighborhoods() {
    if (neighborhoodRequest) {
      neighborhoodRequest.abort();
      neighborhoodRequest = null;
    }
    if (neighborhoodLayer) {
      map.removeLayer(neighborhoodLayer);
      neighborhoodLayer = null;
    }
  }

  function loadNeighborhoods() {
    var zoom = apiZoom();
    var bbox = viewBBox();
    if (zoom < NEIGHBORHOOD_MIN_ZOOM || !bbox) {
      clearNeighborhoods();
      return Promise.resolve(null);
    }
    if (neighborhoodRequest) {
      neighborhoodRequest.abort();
    }
    var request = new AbortController();
    neighborhoodRequest = request;
    var url = apiUrl(config.api.neighborhoods, { bbox: bbox, zoom: zoom });
    return getJSON(url, request.signal).then(function (data) {
      if (neighborhoodRequest !== request) {
        return null;
      }
      neighborhoodRequest = null;
      var layer = L.geoJSON(data, {
        pane: "neighborhoods",
        style: function () {
          return STYLES.neighborhood;
        },
        onEachFeature: function (feature, featureLayer) {
          var props = feature.properties || {};
          var name = props.name == null ? "" : String(props.name);
          var detail = props.district_name ? String(props.district_name) : null;
          featureLayer.bindTooltip(
            tooltipContent(labels.neighborhood, name, detail, props.region),
            { sticky: true, direction: "top", offset: [0, -8], className: "area-tooltip-wrap" }
          );
          featureLayer.on("add", function () {
            tagPath(featureLayer, "neighborhood", props.code);
          });
          featureLayer.on("mouseover", function () {
            featureLayer.setStyle(STYLES.neighborhoodHover);
          });
          featureLayer.on("mouseout", function () {
            layer.resetStyle(featureLayer);
          });
        },
      });
      layer.addTo(map);
      if (neighborhoodLayer) {
        map.removeLayer(neighborhoodLayer);
      }
      neighborhoodLayer = layer;
      setStatus(data.truncated ? labels.truncated : "");
      return data;
    });
  }

  function reportError(error) {
    if (isAbort(error)) {
      return;
    }
    logError(error);
    setStatus(labels.loadError, true);
  }

  var moveTimer = null;
  function onMoveEnd() {
    window.clearTimeout(moveTimer);
    moveTimer = window.setTimeout(function () {
      // Districts come simplified for the zoom they were asked at: ask again, finer,
      // when zooming in past it (up to the zoom the API stops simplifying at).
      if (districtZoom !== null && apiZoom() > districtZoom && districtZoom < FULL_DETAIL_ZOOM) {
        loadDistricts().catch(reportError);
      }
      if (regionOutlineZoom === null || regionOutlineZoom < FULL_DETAIL_ZOOM) {
        loadRegionOutlines();
      }
      loadNeighborhoods().catch(reportError);
    }, 200);
  }

  // --- regions and start-up -----------------------------------------------------

  var syntheticNotice = document.getElementById("synthetic-notice");

  function showRegions(regions) {
    var bounds = null;
    regions.forEach(function (region) {
      regionsByCode[region.code] = region;
      var extent = bboxBounds(region.bbox);
      if (!extent) {
        return;
      }
      bounds = bounds ? bounds.extend(extent) : L.latLngBounds(extent.getSouthWest(), extent.getNorthEast());
    });
    if (syntheticNotice && regions.some(function (r) { return r.synthetic; })) {
      syntheticNotice.hidden = false;
    }
    var chosen = chosenRegion(config, regions);
    if (chosen) {
      bounds = bboxBounds(chosen.bbox);
    }
    if (bounds && bounds.isValid()) {
      map.fitBounds(bounds, { padding: [16, 16] });
    }
    return bounds;
  }

  watchRegionPicker(config, function (code) {
    var region = regionsByCode[code];
    var bounds = region && bboxBounds(region.bbox);
    if (bounds) {
      map.fitBounds(bounds, { padding: [16, 16] });
    }
  });

  /* Region outlines, simplified for the zoom they were asked at like the districts: asked
     again, finer, when the map is zoomed in past it, so their dashed lines follow the
     district borders instead of cutting through them. */
  var regionOutlineLayer = null;
  var regionOutlineZoom = null;
  var regionOutlineRequest = null;

  function loadRegionOutlines() {
    var zoom = apiZoom();
    if (!config.api.regionOutlines || (regionOutlineZoom !== null && zoom <= regionOutlineZoom)) {
      return Promise.resolve(null);
    }
    if (regionOutlineRequest) {
      regionOutlineRequest.abort();
    }
    var controller = new AbortController();
    regionOutlineRequest = controller;
    var url = config.api.regionOutlines + "?zoom=" + zoom;
    return getJSON(url, controller.signal).then(function (data) {
      if (regionOutlineRequest !== controller) {
        return null;
      }
      regionOutlineRequest = null;
      var layer = L.geoJSON(data, { style: function () { return STYLES.region; }, interactive: false });
      layer.addTo(map);
      if (regionOutlineLayer) {
        map.removeLayer(regionOutlineLayer);
      }
      regionOutlineLayer = layer;
      regionOutlineZoom = zoom;
      mapNode.setAttribute("data-region-outline-zoom", String(zoom));
      return data;
    }).catch(function () { return null; }); // context only: the map works without them
  }

  function start() {
    setStatus(labels.loading);
    getJSON(config.api.regions)
      .then(function (regions) {
        showRegions(Array.isArray(regions) ? regions : []);
        loadRegionOutlines();
        return loadDistricts();
      })
      .then(function (data) {
        var count = data && data.features ? data.features.length : 0;
        if (!count) {
          setStatus(labels.noData);
        } else if (!data.truncated) {
          setStatus("");
        }
        mapNode.setAttribute("data-districts", String(count));
        map.on("moveend", onMoveEnd);
        return loadNeighborhoods();
      })
      .catch(reportError);
  }

  // --- district search (combobox) ----------------------------------------------

  var form = document.getElementById("district-search-form");
  var input = document.getElementById("district-search");
  var list = document.getElementById("district-suggestions");
  var searchStatus = document.getElementById("district-search-status");
  var matches = [];
  var active = -1;

  function findDistricts(query) {
    var key = normalize(query);
    if (!key) {
      return [];
    }
    var ranked = [];
    districtIndex.forEach(function (entry) {
      var at = entry.key.indexOf(key);
      if (at < 0) {
        return;
      }
      // Whole name first, then names starting with the text, then words starting with it.
      var rank = entry.key === key ? 0 : at === 0 ? 1 : entry.key.charAt(at - 1) === " " ? 2 : 3;
      ranked.push({ rank: rank, entry: entry });
    });
    ranked.sort(function (a, b) {
      return a.rank - b.rank || (a.entry.key < b.entry.key ? -1 : a.entry.key > b.entry.key ? 1 : 0);
    });
    return ranked.map(function (r) {
      return r.entry;
    });
  }

  function announce(text) {
    if (searchStatus) {
      searchStatus.textContent = text;
    }
  }

  function closeSuggestions() {
    list.hidden = true;
    list.textContent = "";
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function setActive(index) {
    var options = list.querySelectorAll("[role=option]");
    if (!options.length) {
      return;
    }
    active = (index + options.length) % options.length;
    options.forEach(function (option, i) {
      option.setAttribute("aria-selected", i === active ? "true" : "false");
      option.classList.toggle("is-active", i === active);
    });
    input.setAttribute("aria-activedescendant", options[active].id);
    options[active].scrollIntoView({ block: "nearest" });
  }

  function renderSuggestions() {
    matches = findDistricts(input.value);
    list.textContent = "";
    active = -1;
    input.removeAttribute("aria-activedescendant");
    if (!normalize(input.value)) {
      closeSuggestions();
      announce("");
      return;
    }
    if (!matches.length) {
      var empty = document.createElement("li");
      empty.className = "district-suggestion-empty";
      empty.textContent = labels.noMatches;
      list.appendChild(empty);
      list.hidden = false;
      input.setAttribute("aria-expanded", "false");
      announce(labels.noMatches);
      return;
    }
    matches.slice(0, MAX_SUGGESTIONS).forEach(function (entry, i) {
      var option = document.createElement("li");
      option.id = "district-option-" + i;
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", "false");
      option.className = "district-suggestion";
      option.textContent = entry.name;
      if (isSynthetic(entry.props.region)) {
        var badge = document.createElement("span");
        badge.className = "badge badge-synthetic";
        badge.textContent = labels.syntheticBadge;
        option.appendChild(document.createTextNode(" "));
        option.appendChild(badge);
      }
      // mousedown, not click: keep the focus in the input until the choice is made.
      option.addEventListener("mousedown", function (event) {
        event.preventDefault();
        choose(entry);
      });
      list.appendChild(option);
    });
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    announce(
      matches.length === 1 ? labels.matchesOne : format(labels.matchesMany, { count: matches.length })
    );
  }

  function choose(entry) {
    if (!entry) {
      return;
    }
    selected = { region: entry.props.region, code: entry.props.code };
    restyleDistricts();
    input.value = entry.name;
    closeSuggestions();
    map.fitBounds(entry.layer.getBounds(), { padding: [24, 24], maxZoom: 15 });
    announce(format(labels.zoomedTo, { name: entry.name }));
  }

  if (form && input && list) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var current = findDistricts(input.value);
      choose(active >= 0 && matches[active] ? matches[active] : current[0]);
    });
    input.addEventListener("input", renderSuggestions);
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        if (list.hidden) {
          renderSuggestions();
        }
        if (matches.length) {
          event.preventDefault();
          setActive(active + (event.key === "ArrowDown" ? 1 : -1));
        }
      } else if (event.key === "Escape") {
        if (!list.hidden) {
          event.preventDefault();
          closeSuggestions();
        }
      }
    });
    input.addEventListener("blur", function () {
      window.setTimeout(closeSuggestions, 150);
    });
  }

  // --- recovered public spaces ------------------------------------------------------
  // Recovered and maintained spaces from the anonymous layer (publicspaces): kind, dates,
  // activity counts and photos; no personal data reaches this endpoint. Names and
  // captions come from data: DOM text only.

  var spacesConfig = readJSON("public-spaces-config");
  var spacesLabels = spacesConfig.labels || {};
  var spacesLayer = null;
  var spacesToggle = document.getElementById("public-spaces-toggle");

  map.createPane("publicSpaces").style.zIndex = "440";

  /* Only photos of this server: a path, never another origin. */
  function localPath(url) {
    return typeof url === "string" && url.charAt(0) === "/" && url.charAt(1) !== "/";
  }

  function spacePopup(props) {
    var box = el("div", "ps-popup public-space-popup");
    box.appendChild(el("span", "ps-popup-kind", (spacesLabels.kinds || {})[props.kind] || props.kind));
    box.appendChild(el("strong", "ps-popup-name", props.name));
    var condition = el("span", "ps-popup-condition");
    var dot = el("span", "ps-dot");
    dot.style.backgroundColor = (spacesConfig.colours || {})[props.condition] || "#1e8449";
    condition.appendChild(dot);
    condition.appendChild(
      document.createTextNode((spacesLabels.conditions || {})[props.condition] || props.condition)
    );
    box.appendChild(condition);
    var facts = el("dl", "ps-popup-facts");
    function fact(term, value) {
      definitionRow(facts, term, value);
    }
    fact(spacesLabels.district, props.district);
    fact(spacesLabels.neighborhood, props.neighborhood);
    fact(spacesLabels.worksStarted, props.works_started_on);
    fact(spacesLabels.recoveredOn, props.recovered_on);
    fact(spacesLabels.maintainedOn, props.maintained_on);
    fact(spacesLabels.activities, props.activity_count);
    fact(spacesLabels.participants, props.participant_total);
    box.appendChild(facts);
    var photos = (props.photos || []).filter(function (photo) {
      return photo && localPath(photo.url);
    });
    if (photos.length) {
      var strip = el("div", "ps-popup-photos");
      photos.slice(0, 4).forEach(function (photo) {
        var img = document.createElement("img");
        img.src = photo.url;
        img.loading = "lazy";
        img.alt = format(spacesLabels.photo || "%(stage)s", {
          stage: (spacesLabels.stages || {})[photo.stage] || photo.stage,
        });
        img.setAttribute("data-stage", photo.stage);
        strip.appendChild(img);
      });
      box.appendChild(strip);
    }
    if (props.is_demo) {
      box.appendChild(el("span", "badge badge-synthetic", spacesLabels.demo));
    }
    return box;
  }

  function spaceStyle(feature) {
    var colour = (spacesConfig.colours || {})[(feature.properties || {}).condition] || "#1e8449";
    return { pane: "publicSpaces", color: colour, weight: 3, opacity: 0.95, fillColor: colour, fillOpacity: 0.45 };
  }

  // A park is a few pixels wide at a city's zoom: below this size (the largest side, in
  // screen pixels) a shape also gets a dot at its middle, so neighbours can find it.
  var SPACE_MIN_PIXELS = 14;

  function bindSpace(featureLayer, props, layerName) {
    featureLayer.bindPopup(function () {
      return spacePopup(props);
    });
    featureLayer.bindTooltip(String(props.name == null ? "" : props.name), {
      direction: "top",
      className: "area-tooltip-wrap",
    });
    featureLayer.on("add", function () {
      tagLayer(featureLayer, {
        "data-layer": layerName,
        "data-condition": props.condition || "",
        "data-demo": props.is_demo ? "true" : "false",
      });
    });
  }

  function loadPublicSpaces() {
    if (!spacesConfig.api) {
      return Promise.resolve(null);
    }
    return getJSON(spacesConfig.api).then(function (data) {
      var dots = L.layerGroup();
      var small = []; // [shape, dot] of every shape that is not a point
      var shapes = L.geoJSON(data, {
        pane: "publicSpaces",
        style: spaceStyle,
        pointToLayer: function (feature, latlng) {
          return L.circleMarker(latlng, L.extend({ radius: 8 }, spaceStyle(feature), { fillOpacity: 0.8 }));
        },
        onEachFeature: function (feature, featureLayer) {
          var props = feature.properties || {};
          bindSpace(featureLayer, props, "public-space");
          if (featureLayer.getBounds) {
            var dot = L.circleMarker(
              featureLayer.getBounds().getCenter(),
              L.extend({ radius: 7 }, spaceStyle(feature), { weight: 2, fillOpacity: 0.85 })
            );
            bindSpace(dot, props, "public-space-marker");
            small.push([featureLayer, dot]);
          }
        },
      });

      function showDots() {
        small.forEach(function (pair) {
          var bounds = pair[0].getBounds();
          var a = map.latLngToLayerPoint(bounds.getSouthWest());
          var b = map.latLngToLayerPoint(bounds.getNorthEast());
          var tiny = Math.max(Math.abs(a.x - b.x), Math.abs(a.y - b.y)) < SPACE_MIN_PIXELS;
          if (tiny && !dots.hasLayer(pair[1])) {
            dots.addLayer(pair[1]);
          } else if (!tiny && dots.hasLayer(pair[1])) {
            dots.removeLayer(pair[1]);
          }
        });
      }
      map.on("zoomend", showDots);
      showDots();

      var layer = L.featureGroup([shapes, dots]);
      spacesLayer = layer;
      if (!spacesToggle || spacesToggle.checked) {
        layer.addTo(map);
      }
      mapNode.setAttribute("data-public-spaces", String((data.features || []).length));
      return data;
    }).catch(function (error) {
      logError(error);
      setStatus(spacesLabels.loadError, true);
    });
  }

  if (spacesToggle) {
    spacesToggle.addEventListener("change", function () {
      if (!spacesLayer) {
        return;
      }
      if (spacesToggle.checked) {
        spacesLayer.addTo(map);
      } else {
        map.removeLayer(spacesLayer);
      }
    });
  }

  start();
  loadPublicSpaces();
}

var page = mapPage("map-config", "map-labels");
if (page) {
  main(page.config, page.labels, page.mapNode);
}
