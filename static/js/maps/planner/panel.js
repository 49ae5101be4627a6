/*
 * Planner map: the one side panel (layers, filters, counts, hotspots; collapsible, folded
 * on phones), and the room it and the legend leave when the map is fitted to an area.
 */
import { matchesMedia } from "../common.js";

export var PHONE_QUERY = "(max-width: 760px)";

export function createPanel(ctx) {
  var map = ctx.map;
  var mapNode = ctx.mapNode;
  var labels = ctx.labels;
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

  var onPhone = matchesMedia(PHONE_QUERY);
  setPanelOpen(!onPhone);
  if (panelToggle) {
    panelToggle.addEventListener("click", function () {
      setPanelOpen(panel.hidden);
    });
  }

  // The legend starts folded to its one-line title (the template leaves it closed).
  var legend = document.getElementById("map-legend");

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

  return { fitOptions: fitOptions };
}
