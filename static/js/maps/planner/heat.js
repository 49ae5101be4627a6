/*
 * Planner map: the heat layer (Leaflet.heat) over the incidents, from the server's
 * points weighed for the zoom; drawn only while its toggle is on.
 */
import { apiUrl } from "../common.js";

export function createHeat(ctx, filters) {
  var map = ctx.map;
  var mapNode = ctx.mapNode;
  var heatChannel = ctx.channel("heat");
  var heatToggle = document.getElementById("heat-toggle");
  var heatLayer = null;

  function isOn() {
    return Boolean(heatToggle && heatToggle.checked);
  }

  function clear() {
    heatChannel.abort();
    if (heatLayer) {
      heatLayer.setLatLngs([]);
    }
  }

  function load(filterParams, bbox) {
    var zoom = ctx.apiZoom();
    var url = apiUrl(ctx.api.heat, L.extend({}, filterParams, { bbox: bbox, zoom: zoom }));
    return heatChannel.get(url, {
      wanted: isOn,
      draw: function (data) {
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
      },
      fail: function () {
        ctx.setStatus(ctx.labels.loadError, true);
      },
    });
  }

  if (heatToggle) {
    heatToggle.addEventListener("change", function () {
      mapNode.setAttribute("data-heat", isOn() ? "on" : "off");
      if (isOn()) {
        var filterParams = filters.currentFilters();
        var bbox = ctx.viewBBox();
        if (filterParams && bbox) {
          load(filterParams, bbox);
        }
      } else {
        heatChannel.abort();
        if (heatLayer && map.hasLayer(heatLayer)) {
          map.removeLayer(heatLayer);
        }
        // Leaflet.heat 0.2 cannot be given new points while off the map and then added
        // back (its draw threw, so a heat map turned on again never appeared): the next
        // "on" builds a new layer.
        heatLayer = null;
        mapNode.removeAttribute("data-heat-points");
      }
    });
  }

  return { load: load, clear: clear, isOn: isOn, abort: function () { heatChannel.abort(); } };
}
