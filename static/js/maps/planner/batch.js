/*
 * Planner map: one import batch shown alone (?batch=<id>, from the batch's page). While
 * it is on, every incident request carries batch=<id> and the map opens on the batch's
 * extent; the chip names it ("Batch 12") and its button brings every incident back (and
 * drops ?batch= from the address, so a reload shows everything too).
 */
import { bboxBounds } from "../common.js";

export function createBatchFilter(ctx) {
  var batch = (ctx.config && ctx.config.batch) || null;
  var chip = document.getElementById("batch-chip");
  var close = document.getElementById("batch-chip-close");
  var dismissed = [];

  function params(filters) {
    if (batch && filters) {
      filters.batch = String(batch.id);
    }
    return filters;
  }

  function bounds() {
    var extent = batch && bboxBounds(batch.bbox);
    return extent && extent.isValid() ? extent : null;
  }

  function dropFromAddress() {
    if (!window.history || !window.history.replaceState) {
      return;
    }
    var url = new URL(window.location.href);
    url.searchParams.delete("batch");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }

  function dismiss() {
    batch = null;
    if (chip && chip.parentNode) {
      chip.parentNode.removeChild(chip);
    }
    ctx.mapNode.removeAttribute("data-batch");
    dropFromAddress();
    dismissed.forEach(function (listener) {
      listener();
    });
  }

  if (chip) {
    // A Leaflet control in the top-left corner, under the zoom buttons.
    var Chip = L.Control.extend({
      options: { position: "topleft" },
      onAdd: function () {
        L.DomEvent.disableClickPropagation(chip);
        L.DomEvent.disableScrollPropagation(chip);
        return chip;
      },
    });
    new Chip().addTo(ctx.map);
    chip.hidden = false;
  }
  if (close) {
    close.addEventListener("click", dismiss);
  }
  if (batch) {
    ctx.mapNode.setAttribute("data-batch", String(batch.id));
  }

  return {
    params: params,
    bounds: bounds,
    onDismiss: function (listener) {
      dismissed.push(listener);
    },
  };
}
