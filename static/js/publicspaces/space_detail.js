/*
 * A space's page: the space on a map over its district's border; for users who may edit
 * it, geoman's vertex editing or whole-shape dragging, saved through the geometry form
 * (the server refuses a shape outside the district and says why). Also previews a photo
 * chosen for upload before it is sent.
 */
import { mapPage, statusSetter, tagLayer } from "../maps/common.js";
import { addOutline, colourFor, createSpaceMap, setupGeoman, spaceStyle } from "./spaces.js";

function previewPhotos() {
  document.querySelectorAll(".ps-photo-form").forEach(function (form) {
    var input = form.querySelector("input[type=file]");
    var box = form.querySelector(".ps-photo-preview");
    if (!input || !box || !window.URL || !URL.createObjectURL) {
      return;
    }
    input.addEventListener("change", function () {
      box.textContent = "";
      var file = input.files && input.files[0];
      if (!file || !/^image\//.test(file.type)) {
        return;
      }
      var img = document.createElement("img");
      img.alt = file.name;
      img.src = URL.createObjectURL(file);
      img.onload = function () {
        URL.revokeObjectURL(img.src);
      };
      box.appendChild(img);
    });
  });
}

/* A refused form comes back under the URL it was posted to (HTTP 400, errors next to the
   fields). Put the space page's own URL in the address bar, so that reloading or
   switching the language reads the page instead of sending the form again. */
function settleUrl() {
  var head = document.querySelector("[data-page-url]");
  var url = head && head.getAttribute("data-page-url");
  if (!url || !window.history || !history.replaceState) {
    return;
  }
  var path = url.split("#")[0];
  if (window.location.pathname === path) {
    return;
  }
  history.replaceState(null, "", url);
  document.querySelectorAll(".lang-switch input[name=next]").forEach(function (input) {
    input.value = path;
  });
  var anchor = url.indexOf("#") >= 0 ? document.getElementById(url.split("#")[1]) : null;
  if (anchor && anchor.scrollIntoView) {
    anchor.scrollIntoView();
  }
}

function main() {
  previewPhotos();
  settleUrl();

  var page = mapPage("space-map-config", "space-map-labels");
  if (!page || !page.config.space) {
    return;
  }
  var config = page.config;
  var labels = page.labels;
  var mapNode = page.mapNode;
  var map = createSpaceMap(mapNode, config, labels);
  var outline = config.districtOutline ? addOutline(map, config.districtOutline) : null;
  var colour = colourFor(config, config.space.condition);

  // Points are markers here (not circles): geoman drags markers.
  var group = L.geoJSON(config.space.geometry, {
    style: function () {
      return spaceStyle(colour);
    },
    pointToLayer: function (feature, latlng) {
      return L.marker(latlng);
    },
  });
  group.addTo(map);
  var shape = group.getLayers()[0];
  if (shape) {
    tagLayer(shape, { "data-space-id": config.space.id });
  }

  // Framed on the space itself (the district border stays visible around it when it
  // fits): a small park framed with its whole district is a few pixels wide.
  var POINT_ZOOM = 18;
  function frame() {
    var bounds = group.getBounds();
    if (!bounds.isValid()) {
      if (outline) {
        map.fitBounds(outline.getBounds(), { padding: [16, 16] });
      }
      return;
    }
    if (bounds.getSouthWest().equals(bounds.getNorthEast())) {
      map.setView(bounds.getCenter(), POINT_ZOOM);
    } else {
      map.fitBounds(bounds, { padding: [48, 48], maxZoom: POINT_ZOOM });
    }
  }
  frame();

  // A refused shape is drawn dashed, in red, over the saved one.
  if (config.drawnGeometry) {
    try {
      L.geoJSON(JSON.parse(config.drawnGeometry), {
        interactive: false,
        style: function () {
          return { color: "#b42318", weight: 3, dashArray: "4 4", fillOpacity: 0.1 };
        },
        pointToLayer: function (feature, latlng) {
          return L.circleMarker(latlng, { radius: 9, color: "#b42318", dashArray: "4 4" });
        },
      }).addTo(map);
    } catch (error) {
      // Not GeoJSON: the error message next to the form says so.
    }
  }
  mapNode.setAttribute("data-ready", "true");

  var form = document.getElementById("geometry-form");
  if (!config.canEdit || !form || !shape || !setupGeoman(map, labels)) {
    return;
  }
  var input = form.querySelector("input[name=geometry]");
  var save = document.getElementById("shape-save");
  var cancel = document.getElementById("shape-cancel");
  var hint = document.getElementById("shape-hint");

  function changed() {
    input.value = JSON.stringify(shape.toGeoJSON().geometry);
    save.disabled = false;
    mapNode.setAttribute("data-shape-changed", "true");
  }

  function editing(mode) {
    hint.hidden = false;
    cancel.hidden = false;
    mapNode.setAttribute("data-edit-mode", mode);
  }

  shape.on("pm:edit", changed);
  shape.on("pm:dragend", changed);

  document.getElementById("shape-edit").addEventListener("click", function () {
    shape.pm.disableLayerDrag && shape.pm.disableLayerDrag();
    shape.pm.enable({ allowSelfIntersection: false });
    editing("vertices");
  });
  document.getElementById("shape-move").addEventListener("click", function () {
    shape.pm.disable();
    if (shape.pm.enableLayerDrag) {
      shape.pm.enableLayerDrag();
    } else if (shape.dragging) {
      shape.dragging.enable();
    }
    editing("move");
  });
  if (shape instanceof L.Marker) {
    shape.on("dragend", changed);
  }
  form.addEventListener("submit", function () {
    if (!save.disabled) {
      input.value = JSON.stringify(shape.toGeoJSON().geometry);
    }
  });
  statusSetter(document.getElementById("map-status"))("");
}

main();
