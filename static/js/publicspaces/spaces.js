/*
 * Helpers shared by the municipal public-space pages (the map and each space's page), an
 * ES module imported by space_map.js and space_detail.js (with js/maps/common.js).
 *
 * Settings and translated labels come from the page (json_script); every string that comes
 * from data (names, addresses) reaches the DOM as text, never as markup.
 */
import { createMap, tagLayer } from "../maps/common.js";

export function createSpaceMap(mapNode, config, labels) {
  var map = createMap(mapNode, config, labels);
  // District borders under the spaces (Leaflet's overlay pane is at 400).
  map.createPane("districtOutline").style.zIndex = "350";
  return map;
}

/* The district border(s): context only, drawn with no base tiles too. */
export function addOutline(map, data) {
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
        tagLayer(featureLayer, {
          "data-level": "district-outline",
          "data-code": (feature.properties || {}).code || "",
        });
      });
    },
  });
  layer.addTo(map);
  return layer;
}

export function colourFor(config, condition) {
  return (config.conditionColours || {})[condition] || "#555555";
}

export function spaceStyle(colour) {
  return { color: colour, weight: 4, opacity: 0.95, fillColor: colour, fillOpacity: 0.35 };
}

/* A GeoJSON layer of spaces: polygons and lines styled by condition, points as circles. */
export function spacesLayer(data, config, options) {
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
export function setupGeoman(map, labels) {
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

/*
 * A visible text label next to the icon of each drawing button (issue 13, item 10): names
 * maps geoman's button names (drawPolygon, drawPolyline…) to the short translated text.
 * The text becomes the button's accessible name; the longer title stays, on the button
 * too, as its description and tooltip. Geoman rebuilds its buttons when its language
 * changes, so they are labelled again then.
 */
export function labelGeomanButtons(map, names) {
  if (!map.pm || !names) {
    return;
  }
  function label() {
    var buttons = map.pm.Toolbar.getButtons();
    Object.keys(names).forEach(function (name) {
      var node = buttons[name] && buttons[name].buttonsDomNode;
      var link = node && node.querySelector("a.leaflet-buttons-control-button");
      if (!link || !names[name] || link.querySelector(".draw-label")) {
        return;
      }
      var text = document.createElement("span");
      text.className = "draw-label";
      text.textContent = names[name];
      link.appendChild(text);
      if (node.getAttribute("title")) {
        link.setAttribute("title", node.getAttribute("title"));
      }
      node.classList.add("has-draw-label");
      node.setAttribute("data-tool", name);
    });
  }
  label();
  map.getContainer().classList.add("has-draw-labels");
  map.on("pm:langchange", label);
}
