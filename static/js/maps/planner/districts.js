/*
 * Planner map: the district outlines (fetched simplified for the zoom, again finer when
 * zooming in) and the panel's district filter, which highlights its district and zooms
 * the map to it.
 */
import { apiUrl, el, getJSON, tagLayer } from "../common.js";

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

function districtKey(props) {
  return String(props.region) + "|" + String(props.code);
}

export function createDistricts(ctx) {
  var map = ctx.map;
  var lang = ctx.lang;
  var districtSelect = document.getElementById("filter-district");
  var districtLayer = null;
  var districtZoom = null;
  var districtChannel = ctx.channel("districts");
  var districtsByKey = {};
  var districtLayers = {};

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

  function restyle() {
    if (districtLayer) {
      districtLayer.setStyle(districtStyle);
    }
  }

  var allFeatures = [];
  var allRegionNames = {};

  /* The district filter's options: the districts of ``onlyRegion`` (the region picked on
     the map) when it has any, else every district grouped by region. */
  function fillSelect(features, regionNames, onlyRegion) {
    allFeatures = features;
    allRegionNames = regionNames;
    while (districtSelect.options.length > 1) {
      districtSelect.remove(1);
    }
    Array.prototype.slice.call(districtSelect.querySelectorAll("optgroup")).forEach(function (group) {
      group.remove();
    });
    if (onlyRegion && features.some(function (f) { return (f.properties || {}).region === onlyRegion; })) {
      features = features.filter(function (f) {
        return (f.properties || {}).region === onlyRegion;
      });
    }
    var byRegion = {};
    features.forEach(function (feature) {
      var props = feature.properties || {};
      var key = districtKey(props);
      districtsByKey[key] = { region: props.region, code: props.code, name: props.name };
      (byRegion[props.region] = byRegion[props.region] || []).push(districtsByKey[key]);
    });
    var regions = Object.keys(byRegion).sort(function (a, b) {
      return String(regionNames[a] || a).localeCompare(String(regionNames[b] || b), lang);
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
          return String(a.name).localeCompare(String(b.name), lang);
        })
        .forEach(function (district) {
          var option = el("option", null, district.name);
          option.value = districtKey(district);
          parent.appendChild(option);
        });
    });
  }

  function load() {
    var zoom = ctx.apiZoom();
    var request = districtChannel.start();
    return getJSON(apiUrl(ctx.api.districts, { zoom: zoom }), request.signal).then(function (data) {
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
            tagLayer(featureLayer, {
              "data-level": "district",
              "data-code": (feature.properties || {}).code,
            });
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

  /* Boundaries come simplified for the zoom they were asked at: true when the map is
     zoomed in far enough past it to ask again, finer (up to fullDetailZoom). */
  function wantFiner(fullDetailZoom) {
    return districtZoom !== null && ctx.apiZoom() > districtZoom + 1 && districtZoom < fullDetailZoom;
  }

  /* The district chosen in the filter ({region, code, name}), or null. */
  function selected() {
    return districtSelect.value ? districtsByKey[districtSelect.value] : null;
  }

  /* Every district loaded, as {region, code, name}. */
  function all() {
    return Object.keys(districtsByKey).map(function (key) {
      return districtsByKey[key];
    });
  }

  /* The map to the chosen district, or back to all of them. */
  function fitToChoice(fitOptions) {
    var layer = districtSelect.value ? districtLayers[districtSelect.value] : districtLayer;
    var bounds = layer && layer.getBounds();
    if (bounds && bounds.isValid()) {
      map.fitBounds(bounds, fitOptions(bounds));
    }
  }

  /* The filter shows the districts of another region (the choice is cleared when its
     district is not one of them). */
  function showRegion(code) {
    var chosen = selected();
    fillSelect(allFeatures, allRegionNames, code);
    if (chosen && chosen.region !== code) {
      districtSelect.value = "";
      districtSelect.dispatchEvent(new Event("change", { bubbles: true }));
    } else if (chosen) {
      districtSelect.value = districtKey(chosen);
    }
  }

  /* The filter set to one district, if it is listed; true when the choice changed. */
  function focus(region, code) {
    var key = districtKey({ region: region, code: code });
    if (!districtsByKey[key] || districtSelect.value === key) {
      return false;
    }
    var before = districtSelect.value;
    districtSelect.value = key;
    if (districtSelect.value !== key) {
      districtSelect.value = before; // not listed: a district of another region
      return false;
    }
    restyle();
    return true;
  }

  return {
    select: districtSelect,
    focus: focus,
    load: load,
    fillSelect: fillSelect,
    showRegion: showRegion,
    restyle: restyle,
    wantFiner: wantFiner,
    selected: selected,
    all: all,
    fitToChoice: fitToChoice,
  };
}
