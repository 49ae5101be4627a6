/*
 * Planner map layer: recovered public spaces with the incidents within a chosen distance
 * in the months before and after their recovery (planners-only
 * /api/v1/public-spaces/incident-change/).
 *
 * How it finds the planner's map without touching planner_map.js: this file is loaded
 * after leaflet.js and BEFORE planner_map.js, and registers a Leaflet init hook
 * (L.Map.addInitHook, Leaflet's documented way to extend every map) that keeps the map
 * created on #map. A page may instead dispatch
 *   document.dispatchEvent(new CustomEvent("barrio:map-ready", {detail: {map: map}}))
 * after creating its map; either way the layer attaches once.
 *
 * Settings and translated labels come from the JSON at the script tag's data-config URL
 * (publicspaces:planner-layer, rendered in the page's language). Data strings reach the
 * DOM as text only.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var configUrl = script && script.getAttribute("data-config");
  if (typeof L === "undefined" || !configUrl) {
    return;
  }

  var map = null;
  var config = null;

  function attach(candidate) {
    if (map || !candidate) {
      return;
    }
    map = candidate;
    start();
  }

  L.Map.addInitHook(function () {
    var container = this.getContainer && this.getContainer();
    if (container && container.id === "map") {
      var created = this;
      // After the page's own set-up of the map (controls, view) has run.
      window.setTimeout(function () {
        attach(created);
      }, 0);
    }
  });
  document.addEventListener("barrio:map-ready", function (event) {
    attach(event.detail && event.detail.map);
  });

  var common = window.BarrioMap; // static/js/maps/common.js, loaded before this file
  var format = common.format;
  var configRequest = common.getJSON(configUrl);

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

  var PHONE_QUERY = "(max-width: 760px)"; // as planner_map.js
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

  function popup(props) {
    var labels = config.labels;
    var months = props.window_months;
    var box = element("div", "ps-popup planner-space-popup");
    box.appendChild(element("span", "ps-popup-kind", labels.kinds[props.kind] || props.kind));
    box.appendChild(element("strong", "ps-popup-name", props.name));
    var facts = element("dl", "ps-popup-facts");
    function fact(term, value, name) {
      facts.appendChild(element("dt", null, term));
      var dd = element("dd", null, value);
      if (name) {
        dd.setAttribute("data-count", name);
      }
      facts.appendChild(dd);
    }
    fact(labels.recoveredOn, props.recovered_on);
    fact(format(labels.before, { months: months }), props.incidents_before, "before");
    fact(format(labels.after, { months: months }), props.incidents_after, "after");
    box.appendChild(facts);
    box.appendChild(element("p", "ps-hint", format(labels.within, { distance: props.distance_m })));
    var complete = element(
      "p",
      "planner-space-complete",
      props.after_complete ? labels.complete : labels.incomplete
    );
    complete.setAttribute("data-complete", props.after_complete ? "true" : "false");
    box.appendChild(complete);
    if (props.is_demo) {
      box.appendChild(element("span", "badge badge-synthetic", labels.demo));
    }
    return box;
  }

  function start() {
    configRequest
      .then(function (loaded) {
        config = loaded;
        buildControl();
      })
      .catch(function (error) {
        if (window.console) {
          window.console.error(error);
        }
      });
  }

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

    var Control = L.Control.extend({
      options: { position: "topright" },
      onAdd: function () {
        // Folded on phones, where it would cover a third of the map; its title opens it.
        var box = element("details", "planner-spaces-control");
        box.id = "planner-spaces";
        box.open = !(window.matchMedia && window.matchMedia(PHONE_QUERY).matches);
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        var summary = element("summary", "planner-spaces-summary");
        summary.appendChild(element("h2", null, labels.title));
        box.appendChild(summary);
        var toggleLabel = element("label", "map-layer-toggle");
        var toggle = document.createElement("input");
        toggle.type = "checkbox";
        toggle.id = "planner-spaces-toggle";
        toggleLabel.appendChild(toggle);
        toggleLabel.appendChild(element("span", null, labels.show));
        box.appendChild(toggleLabel);

        var form = element("form", null);
        form.id = "planner-spaces-form";
        form.noValidate = true;
        var field = element("label", null, labels.distance);
        field.setAttribute("for", "planner-spaces-distance");
        var input = document.createElement("input");
        input.type = "number";
        input.id = "planner-spaces-distance";
        input.min = "10";
        input.max = String(config.maxDistance);
        input.step = "10";
        input.value = String(config.defaultDistance);
        var button = element("button", "button button-small", labels.apply);
        button.type = "submit";
        form.appendChild(field);
        form.appendChild(input);
        form.appendChild(button);
        box.appendChild(form);

        var status = element("p", "panel-note", "");
        status.id = "planner-spaces-status";
        status.setAttribute("role", "status");
        box.appendChild(status);

        var legend = element("ul", "legend-items");
        [
          ["fewer", labels.fewer, null],
          ["more", labels.more, null],
          ["same", labels.same, null],
          ["partial", labels.partial, "5 4"],
        ].forEach(function (entry) {
          var item = element("li", null);
          var swatch = element("span", "legend-swatch");
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
          var url = new URL(config.api, window.location.href);
          url.searchParams.set("distance", String(metres));
          url.searchParams.set("months", String(config.months));
          box.setAttribute("aria-busy", "true");
          common
            .getJSON(url.pathname + url.search, controller.signal)
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
                    var node = featureLayer.getElement && featureLayer.getElement();
                    if (node) {
                      node.setAttribute("data-layer", "planner-space");
                      node.setAttribute("data-change", change(props));
                    }
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
      },
    });
    new Control().addTo(map);
  }
})();
