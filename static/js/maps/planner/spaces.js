/*
 * Planner map layer: recovered public spaces with the incidents within a chosen distance
 * in the months before and after their recovery (planners-only
 * /api/v1/public-spaces/incident-change/), folded under the layers of the planner's side
 * panel (#planner-spaces-slot), or in the map's top-right corner on a page without one.
 *
 * Settings and translated labels come from the JSON at the layer's config URL
 * (publicspaces:planner-layer, rendered in the page's language; the page names it in
 * #planner-spaces-config). Data strings reach the DOM as text only.
 */
import { apiUrl, el, format, getJSON, logError, tagLayer } from "../common.js";

var COLOURS = { fewer: "#1e8449", more: "#b42318", same: "#5d6d7e" };

function change(props) {
  var before = Number(props.incidents_before) || 0;
  var after = Number(props.incidents_after) || 0;
  return after < before ? "fewer" : after > before ? "more" : "same";
}

function style(feature) {
  var props = feature.properties || {};
  var colour = COLOURS[change(props)];
  return {
    color: colour,
    weight: 3,
    opacity: 0.95,
    fillColor: colour,
    fillOpacity: 0.4,
    // A dashed border: the months after recovery are not all over yet.
    dashArray: props.after_complete ? null : "5 4",
  };
}

/* Adds the layer's panel to the map once its settings have come. */
export function addPlannerSpaces(map, configUrl) {
  if (!configUrl) {
    return;
  }
  var config = null;

  function popup(props) {
    var labels = config.labels;
    var months = props.window_months;
    var box = el("div", "ps-popup planner-space-popup");
    box.appendChild(el("span", "ps-popup-kind", labels.kinds[props.kind] || props.kind));
    box.appendChild(el("strong", "ps-popup-name", props.name));
    var facts = el("dl", "ps-popup-facts");
    function fact(term, value, name) {
      facts.appendChild(el("dt", null, term));
      var dd = el("dd", null, value);
      if (name) {
        dd.setAttribute("data-count", name);
      }
      facts.appendChild(dd);
    }
    fact(labels.recoveredOn, props.recovered_on);
    fact(format(labels.before, { months: months }), props.incidents_before, "before");
    fact(format(labels.after, { months: months }), props.incidents_after, "after");
    box.appendChild(facts);
    box.appendChild(el("p", "ps-hint", format(labels.within, { distance: props.distance_m })));
    var complete = el(
      "p",
      "planner-space-complete",
      props.after_complete ? labels.complete : labels.incomplete
    );
    complete.setAttribute("data-complete", props.after_complete ? "true" : "false");
    box.appendChild(complete);
    if (props.is_demo) {
      box.appendChild(el("span", "badge badge-synthetic", labels.demo));
    }
    return box;
  }

  getJSON(configUrl)
    .then(function (loaded) {
      config = loaded;
      buildControl();
    })
    .catch(logError);

  function buildControl() {
    var labels = config.labels;
    if (config.css && !document.querySelector('link[data-planner-spaces]')) {
      var link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = config.css;
      link.setAttribute("data-planner-spaces", "");
      document.head.appendChild(link);
    }
    var layer = null;
    var request = null;
    // Over the hotspot zones (610), under the raw incidents (620): see planner_map.js.
    map.createPane("plannerSpaces").style.zIndex = "615";

    function buildBox() {
      // Folded to its title, which opens it: most visits do not need it.
      var box = el("details", "planner-spaces-control");
      box.id = "planner-spaces";
      box.open = false;
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      var summary = el("summary", "planner-spaces-summary");
      summary.appendChild(el("h2", null, labels.title));
      box.appendChild(summary);
      var toggleLabel = el("label", "map-layer-toggle");
      var toggle = document.createElement("input");
      toggle.type = "checkbox";
      toggle.id = "planner-spaces-toggle";
      toggleLabel.appendChild(toggle);
      toggleLabel.appendChild(el("span", null, labels.show));
      box.appendChild(toggleLabel);

      var form = el("form", null);
      form.id = "planner-spaces-form";
      form.noValidate = true;
      var field = el("label", null, labels.distance);
      field.setAttribute("for", "planner-spaces-distance");
      var input = document.createElement("input");
      input.type = "number";
      input.id = "planner-spaces-distance";
      input.min = "10";
      input.max = String(config.maxDistance);
      input.step = "10";
      input.value = String(config.defaultDistance);
      var button = el("button", "button button-small", labels.apply);
      button.type = "submit";
      form.appendChild(field);
      form.appendChild(input);
      form.appendChild(button);
      box.appendChild(form);

      var status = el("p", "panel-note", "");
      status.id = "planner-spaces-status";
      status.setAttribute("role", "status");
      box.appendChild(status);

      var legend = el("ul", "legend-items");
      [
        ["fewer", labels.fewer, null],
        ["more", labels.more, null],
        ["same", labels.same, null],
        ["partial", labels.partial, "5 4"],
      ].forEach(function (entry) {
        var item = el("li", null);
        var swatch = el("span", "legend-swatch");
        swatch.setAttribute("aria-hidden", "true");
        swatch.style.border = "2px " + (entry[2] ? "dashed" : "solid") + " " + (COLOURS[entry[0]] || "#5d6d7e");
        item.appendChild(swatch);
        item.appendChild(document.createTextNode(entry[1]));
        legend.appendChild(item);
      });
      box.appendChild(legend);

      function distance() {
        var value = Number(input.value);
        if (!isFinite(value) || value < 10 || value > config.maxDistance) {
          return null;
        }
        return value;
      }

      function load() {
        var metres = distance();
        if (metres === null) {
          status.textContent = format(labels.badDistance, { max: config.maxDistance });
          status.classList.add("is-error");
          return;
        }
        status.classList.remove("is-error");
        if (request) {
          request.abort();
        }
        var controller = new AbortController();
        request = controller;
        var url = apiUrl(config.api, { distance: String(metres), months: String(config.months) });
        box.setAttribute("aria-busy", "true");
        getJSON(url, controller.signal)
          .then(function (data) {
            if (request !== controller) {
              return;
            }
            request = null;
            if (layer) {
              // An open popup would keep the counts of the previous distance.
              map.closePopup();
              map.removeLayer(layer);
            }
            layer = L.geoJSON(data, {
              pane: "plannerSpaces",
              style: style,
              pointToLayer: function (feature, latlng) {
                return L.circleMarker(latlng, L.extend({ radius: 9, pane: "plannerSpaces" }, style(feature)));
              },
              onEachFeature: function (feature, featureLayer) {
                var props = feature.properties || {};
                featureLayer.bindPopup(function () {
                  return popup(props);
                });
                featureLayer.on("add", function () {
                  tagLayer(featureLayer, { "data-layer": "planner-space", "data-change": change(props) });
                });
              },
            });
            if (toggle.checked) {
              layer.addTo(map);
            }
            var count = (data.features || []).length;
            status.textContent =
              count === 1 ? labels.countOne : format(labels.count, { count: count });
            box.setAttribute("data-count", String(count));
            box.setAttribute("aria-busy", "false");
          })
          .catch(function (error) {
            if (error && error.name === "AbortError") {
              return;
            }
            box.setAttribute("aria-busy", "false");
            status.textContent = labels.loadError;
            status.classList.add("is-error");
          });
      }

      toggle.addEventListener("change", function () {
        if (!toggle.checked) {
          if (layer) {
            map.removeLayer(layer);
          }
          return;
        }
        if (layer) {
          layer.addTo(map);
        } else {
          load();
        }
      });
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        toggle.checked = true;
        load();
      });
      return box;
    }

    var slot = document.getElementById("planner-spaces-slot");
    if (slot) {
      slot.appendChild(buildBox());
      return;
    }
    var Control = L.Control.extend({
      options: { position: "topright" },
      onAdd: buildBox,
    });
    new Control().addTo(map);
  }
}
