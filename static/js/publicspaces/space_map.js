/*
 * The municipal map (/municipality/): the district's border, its spaces coloured by
 * condition (from the scoped /api/v1/public-spaces/), and, for users who may edit, geoman's
 * tools to draw a new space. The drawing is written as a GeoJSON geometry into the form's
 * hidden field; the server parses and checks it (the district rule included) on submit.
 */
import {
  definitionRow,
  el,
  foldOnSmallScreens,
  getJSON,
  logError,
  mapPage,
  statusSetter,
  tagLayer,
} from "../maps/common.js";
import {
  addOutline,
  colourFor,
  createSpaceMap,
  labelGeomanButtons,
  setupGeoman,
  spacesLayer,
} from "./spaces.js";

function main(config, labels, mapNode) {
  var setStatus = statusSetter(document.getElementById("map-status"));
  var map = createSpaceMap(mapNode, config, labels);
  var outline = null;

  foldOnSmallScreens(document.getElementById("map-legend"), "(max-width: 640px)");

  function reportError(error) {
    logError(error);
    setStatus(labels.loadError, true);
  }

  // --- popups ----------------------------------------------------------------------

  function popupContent(props) {
    var box = el("div", "ps-popup");
    var link = el("a", "ps-popup-name", props.name);
    link.href = config.detailUrl.replace("/0/", "/" + encodeURIComponent(props.id) + "/");
    box.appendChild(link);
    var kind = el("span", "ps-popup-kind", labels.kinds[props.kind] || props.kind);
    box.appendChild(kind);
    var condition = el("span", "ps-popup-condition");
    var swatch = el("span", "ps-dot");
    swatch.style.backgroundColor = colourFor(config, props.condition);
    condition.appendChild(swatch);
    condition.appendChild(document.createTextNode(labels.conditions[props.condition] || props.condition));
    box.appendChild(condition);
    var facts = el("dl", "ps-popup-facts");
    function fact(term, value) {
      definitionRow(facts, term, value);
    }
    fact(labels.score, props.condition_score);
    fact(labels.project, props.project_status ? labels.statuses[props.project_status] : "");
    fact(labels.activities, props.activity_count);
    box.appendChild(facts);
    if (props.is_demo) {
      box.appendChild(el("span", "badge badge-synthetic", labels.demo));
    }
    return box;
  }

  // --- spaces --------------------------------------------------------------------------

  var spaces = null;

  function fit() {
    var bounds = null;
    [outline, spaces].forEach(function (layer) {
      if (layer && layer.getLayers().length) {
        var b = layer.getBounds();
        bounds = bounds ? bounds.extend(b) : L.latLngBounds(b.getSouthWest(), b.getNorthEast());
      }
    });
    // A municipal user works in one district: its border frames the map.
    if (config.districtOutline && outline) {
      bounds = outline.getBounds();
    }
    if (bounds && bounds.isValid()) {
      map.fitBounds(bounds, { padding: [16, 16], maxZoom: 17 });
    }
  }

  function loadSpaces() {
    setStatus(labels.loading);
    return getJSON(config.api.spaces).then(function (data) {
      spaces = spacesLayer(data, config, {
        onEachFeature: function (feature, layer) {
          var props = feature.properties || {};
          props.id = feature.id;
          layer.bindPopup(function () {
            return popupContent(props);
          });
          layer.on("add", function () {
            tagLayer(layer, { "data-space-id": feature.id, "data-condition": props.condition });
          });
        },
      });
      spaces.addTo(map);
      var count = (data.features || []).length;
      mapNode.setAttribute("data-spaces", String(count));
      setStatus(count ? "" : labels.noSpaces);
      return data;
    });
  }

  var outlineReady = Promise.resolve(null);
  if (config.districtOutline) {
    outline = addOutline(map, config.districtOutline);
  } else if (config.districtsApi) {
    outlineReady = getJSON(config.districtsApi + "?zoom=12")
      .then(function (data) {
        outline = addOutline(map, data);
      })
      .catch(function () {
        return null;
      });
  }
  fit();
  Promise.all([outlineReady, loadSpaces()])
    .then(function () {
      fit();
      mapNode.setAttribute("data-ready", "true");
    })
    .catch(reportError);

  // --- drawing a new space ------------------------------------------------------------

  var input = document.getElementById("id_geometry");
  var state = document.getElementById("geometry-state");
  if (!config.canEdit || !input || !setupGeoman(map, labels)) {
    return;
  }
  map.pm.addControls({
    position: "topleft",
    drawMarker: true,
    drawPolygon: true,
    drawPolyline: true,
    drawRectangle: true,
    drawCircle: false,
    drawCircleMarker: false,
    drawText: false,
    editMode: false,
    dragMode: false,
    cutPolygon: false,
    removalMode: false,
    rotateMode: false,
  });
  labelGeomanButtons(map, labels.drawTools);
  map.pm.setGlobalOptions({ allowSelfIntersection: false });

  var drawn = null;

  function record() {
    input.value = drawn ? JSON.stringify(drawn.toGeoJSON().geometry) : "";
    if (state) {
      state.textContent = drawn ? labels.drawn : labels.drawHint;
      state.setAttribute("data-drawn", drawn ? "true" : "false");
      state.classList.remove("has-error");
    }
  }

  function useDrawing(layer) {
    if (drawn && drawn !== layer) {
      map.removeLayer(drawn);
    }
    drawn = layer;
    drawn.pm.enable({ allowSelfIntersection: false });
    drawn.on("pm:edit", record);
    record();
  }

  map.on("pm:create", function (event) {
    useDrawing(event.layer);
    var name = document.getElementById("id_name");
    if (name) {
      name.focus({ preventScroll: true });
    }
  });

  // After a refused save, the shape that was sent is drawn again, to fix and resend.
  if (config.drawnGeometry) {
    try {
      var again = L.geoJSON(JSON.parse(config.drawnGeometry)).getLayers()[0];
      if (again) {
        again.addTo(map);
        useDrawing(again);
        if (state) {
          state.classList.add("has-error");
        }
      }
    } catch (error) {
      input.value = "";
    }
  }
}

var page = mapPage("space-map-config", "space-map-labels");
if (page) {
  main(page.config, page.labels, page.mapNode);
}
