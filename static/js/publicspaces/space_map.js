/*
 * The municipal map (/municipality/): the district's border, its spaces coloured by
 * condition (from the scoped /api/v1/public-spaces/), and, for users who may edit, geoman's
 * tools to draw a new space. The drawing is written as a GeoJSON geometry into the form's
 * hidden field; the server parses and checks it (the district rule included) on submit.
 */
(function () {
  "use strict";

  var S = window.BarrioSpaces;
  var common = window.BarrioMap;
  var config = S.readJSON("space-map-config");
  var labels = S.readJSON("space-map-labels");
  var mapNode = document.getElementById("map");
  if (!mapNode || typeof L === "undefined" || !S) {
    return;
  }
  var setStatus = common.statusSetter(document.getElementById("map-status"));
  var map = S.createMap(mapNode, config, labels);
  var outline = null;

  var legend = document.getElementById("map-legend");
  if (legend && window.matchMedia && window.matchMedia("(max-width: 640px)").matches) {
    legend.open = false;
  }

  function reportError(error) {
    if (window.console) {
      window.console.error(error);
    }
    setStatus(labels.loadError, true);
  }

  // --- popups ----------------------------------------------------------------------

  function popupContent(props) {
    var box = S.element("div", "ps-popup");
    var link = S.element("a", "ps-popup-name", props.name);
    link.href = config.detailUrl.replace("/0/", "/" + encodeURIComponent(props.id) + "/");
    box.appendChild(link);
    var kind = S.element("span", "ps-popup-kind", labels.kinds[props.kind] || props.kind);
    box.appendChild(kind);
    var condition = S.element("span", "ps-popup-condition");
    var swatch = S.element("span", "ps-dot");
    swatch.style.backgroundColor = S.colourFor(config, props.condition);
    condition.appendChild(swatch);
    condition.appendChild(document.createTextNode(labels.conditions[props.condition] || props.condition));
    box.appendChild(condition);
    var facts = S.element("dl", "ps-popup-facts");
    function fact(term, value) {
      if (value === null || value === undefined || value === "") {
        return;
      }
      facts.appendChild(S.element("dt", null, term));
      facts.appendChild(S.element("dd", null, value));
    }
    fact(labels.score, props.condition_score);
    fact(labels.project, props.project_status ? labels.statuses[props.project_status] : "");
    fact(labels.activities, props.activity_count);
    box.appendChild(facts);
    if (props.is_demo) {
      box.appendChild(S.element("span", "badge badge-synthetic", labels.demo));
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
    return common.getJSON(config.api.spaces).then(function (data) {
      spaces = S.spacesLayer(data, config, {
        onEachFeature: function (feature, layer) {
          var props = feature.properties || {};
          props.id = feature.id;
          layer.bindPopup(function () {
            return popupContent(props);
          });
          layer.on("add", function () {
            S.tagPath(layer, { "data-space-id": feature.id, "data-condition": props.condition });
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
    outline = S.addOutline(map, config.districtOutline);
  } else if (config.districtsApi) {
    outlineReady = common
      .getJSON(config.districtsApi + "?zoom=12")
      .then(function (data) {
        outline = S.addOutline(map, data);
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
  if (!config.canEdit || !input || !S.setupGeoman(map, labels)) {
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
})();
