/*
 * Helpers shared by the municipal public-space pages (the map and each space's page).
 * Loaded after js/maps/common.js; exposes window.BarrioSpaces.
 *
 * Settings and translated labels come from the page (json_script); every string that comes
 * from data (names, addresses) reaches the DOM as text, never as markup.
 */
(function (global) {
  "use strict";

  var common = global.BarrioMap;

  function readJSON(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : {};
  }

  function createMap(mapNode, config, labels) {
    var map = L.map(mapNode, {
      center: config.center || [0, 0],
      zoom: typeof config.zoom === "number" ? config.zoom : 11,
      minZoom: 2,
      maxZoom: 19,
      zoomControl: false,
      attributionControl: false,
    });
    // District borders under the spaces (Leaflet's overlay pane is at 400).
    map.createPane("districtOutline").style.zIndex = "350";
    common.addBaseControls(map, mapNode, config, labels);
    return map;
  }

  function tagPath(layer, attributes) {
    var element = layer.getElement && layer.getElement();
    if (element) {
      Object.keys(attributes).forEach(function (name) {
        element.setAttribute(name, String(attributes[name]));
      });
    }
  }

  /* The district border(s): context only, drawn with no base tiles too. */
  function addOutline(map, data) {
    var layer = L.geoJSON(data, {
      pane: "districtOutline",
      interactive: false,
      style: function () {
        return {
          color: "#1f5f8b",
          weight: 3,
          opacity: 0.9,
          dashArray: "8 5",
          fillColor: "#4f9bd1",
          fillOpacity: 0.06,
        };
      },
      onEachFeature: function (feature, featureLayer) {
        featureLayer.on("add", function () {
          tagPath(featureLayer, {
            "data-level": "district-outline",
            "data-code": (feature.properties || {}).code || "",
          });
        });
      },
    });
    layer.addTo(map);
    return layer;
  }

  function colourFor(config, condition) {
    return (config.conditionColours || {})[condition] || "#555555";
  }

  function spaceStyle(colour) {
    return { color: colour, weight: 4, opacity: 0.95, fillColor: colour, fillOpacity: 0.35 };
  }

  /* A GeoJSON layer of spaces: polygons and lines styled by condition, points as circles. */
  function spacesLayer(data, config, options) {
    options = options || {};
    return L.geoJSON(data, {
      style: function (feature) {
        return spaceStyle(colourFor(config, (feature.properties || {}).condition));
      },
      pointToLayer: function (feature, latlng) {
        var colour = colourFor(config, (feature.properties || {}).condition);
        return L.circleMarker(latlng, L.extend({ radius: 9 }, spaceStyle(colour), { fillOpacity: 0.8 }));
      },
      onEachFeature: options.onEachFeature,
    });
  }

  /* Geoman in the page's language, with Barrio's own titles for the buttons it shows. */
  function setupGeoman(map, labels) {
    if (!map.pm) {
      return false;
    }
    var lang = (document.documentElement.getAttribute("lang") || "en").slice(0, 2);
    var base = lang === "es" ? "es" : "en";
    map.pm.setLang(
      "barrio-" + base,
      {
        buttonTitles: {
          drawPolyButton: labels.drawPolygon,
          drawLineButton: labels.drawLine,
          drawMarkerButton: labels.drawMarker,
          drawRectButton: labels.drawRectangle,
          deleteButton: labels.removeDrawn,
        },
      },
      base
    );
    return true;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  global.BarrioSpaces = {
    readJSON: readJSON,
    createMap: createMap,
    addOutline: addOutline,
    colourFor: colourFor,
    spaceStyle: spaceStyle,
    spacesLayer: spacesLayer,
    setupGeoman: setupGeoman,
    tagPath: tagPath,
    element: element,
  };
})(window);
