/*
 * Planner map: the hotspot run shown and its layers: cells by Gi* bin, zones, kernel
 * density, emerging categories, a forecast's flagged cells.
 *
 * The run shown is the newest succeeded run of the region in view (or ?run=ID). Its
 * method decides the cell layer: Gi* bins, a density ramp, emerging categories with
 * a time slider over the run's steps (each step coloured by its own Gi* bins), or a
 * forecast's flagged cells on a score ramp (the ranking the back-test chose). Cells
 * are drawn on a canvas (thousands of them); zones are SVG paths with a popup of their
 * figures. The "Run analysis" form (run_form.js) starts runs and shows them here.
 */
import {
  apiUrl,
  bboxBounds,
  boundsBBox,
  definitionRow,
  el,
  format,
  getJSON,
  logError,
  tagLayer,
} from "../common.js";

/* deps: filters (category names), districts (the district chosen), fitOptions (room
   around a fitted area), prefill(run) (the run form takes the run's period and region),
   focusDistrict(region, code) (the incident filter narrowed to a run's one district). */
export function createHotspots(ctx, deps) {
  var map = ctx.map;
  var mapNode = ctx.mapNode;
  var lang = ctx.lang;
  var formatNumber = ctx.formatNumber;
  var categoryName = deps.filters.categoryName;
  var hs = ctx.config.hotspots || {};
  var hsLabels = ctx.labels.hotspots || {};
  var hsNode = function (id) {
    return document.getElementById(id);
  };
  var hsRunSelect = hsNode("hotspot-run");
  var hsInfo = hsNode("hotspot-run-info");
  var hsCellsToggle = hsNode("hotspot-cells-toggle");
  var hsZonesToggle = hsNode("hotspot-zones-toggle");
  var hsStepBox = hsNode("hotspot-step-box");
  var hsStep = hsNode("hotspot-step");
  var hsStepLabel = hsNode("hotspot-step-label");
  var hsLegend = hsNode("hotspot-legend");
  var hsLegendTitle = hsNode("hotspot-legend-title");
  var hsLegendItems = hsNode("hotspot-legend-items");
  var hsZoneHint = hsNode("hotspot-zone-hint");
  var hsCellsLabel = hsNode("hotspot-cells-label");
  var hsZonesLabel = hsNode("hotspot-zones-label");

  map.createPane("hotspotCells").style.zIndex = "360"; // over districts, under the heat map
  map.createPane("hotspotZones").style.zIndex = "610"; // over the incident clusters (see planner_map.js)
  var hsCellRenderer = L.canvas({ pane: "hotspotCells", padding: 0.3 });
  var hsZoneRenderer = L.svg({ pane: "hotspotZones" });
  var hsCellChannel = ctx.channel("hotspotCells");
  var hsZoneChannel = ctx.channel("hotspotZones");
  var hsRun = null; // the detail of the run shown
  var hsCellLayer = null;
  var hsZoneLayer = null;
  var hsCellMeta = {}; // members of the last cell response (steps, max_density...)
  // The area and zoom the drawn cells were asked for: a whole region's density surface
  // is megabytes, so cells come for the view (with a margin) and again when it leaves it.
  var hsCellView = null;
  var CELL_MARGIN = 0.5; // half a view on each side: small pans need no request
  var hsRegions = [];

  var CELL_ENDPOINT = { gistar: "cells", kde: "kde", emerging: "emerging", forecast: "forecast" };

  function runUrl(id, suffix) {
    return String(hs.runsUrl) + encodeURIComponent(String(id)) + "/" + (suffix || "");
  }

  function runPageUrl(id) {
    return String(hs.runPage || "").replace(/\/0\/$/, "/" + encodeURIComponent(String(id)) + "/");
  }

  function stepDate(value) {
    var date = new Date(String(value) + "T00:00:00Z");
    if (isNaN(date.getTime())) {
      return String(value);
    }
    var options =
      hsRun && hsRun.params && hsRun.params.step === "week"
        ? { dateStyle: "medium", timeZone: "UTC" }
        : { year: "numeric", month: "long", timeZone: "UTC" };
    return new Intl.DateTimeFormat(lang, options).format(date);
  }

  function currentStep() {
    return hsStepBox && !hsStepBox.hidden ? Number(hsStep.value) || 0 : 0;
  }

  /* The entry of a settings list (Gi* bins, emerging patterns) whose key is value. */
  function entryWhere(list, key, value) {
    var found = null;
    (list || []).forEach(function (entry) {
      if (entry[key] === value) {
        found = entry;
      }
    });
    return found;
  }

  function binEntry(bin) {
    return entryWhere(hs.bins, "bin", bin);
  }

  function emergingEntry(code) {
    return entryWhere(hs.emerging, "code", code);
  }

  function densityColour(value) {
    var ramp = hs.densityRamp || ["#fd8d3c"];
    var top = Number(hsCellMeta.max_density) || 0;
    var share = top > 0 ? Math.max(0, Math.min(1, Number(value) / top)) : 0;
    return ramp[Math.min(ramp.length - 1, Math.floor(share * ramp.length))];
  }

  /* The share of a flagged cell's score between the run's lowest and highest flagged
     scores (the collection's min_score, max_score). */
  function scoreShare(value) {
    var low = Number(hsCellMeta.min_score);
    var high = Number(hsCellMeta.max_score);
    if (!isFinite(low) || !isFinite(high) || high <= low) {
      return 1;
    }
    return Math.max(0, Math.min(1, (Number(value) - low) / (high - low)));
  }

  function scoreColour(value) {
    var ramp = hs.scoreRamp || ["#31a354"];
    return ramp[Math.min(ramp.length - 1, Math.floor(scoreShare(value) * ramp.length))];
  }

  /* Scores are counts, decayed counts, z-scores or densities: three significant digits
     whatever their size. */
  function formatScore(value) {
    var number = Number(value);
    if (!isFinite(number) || number === 0) {
      return formatNumber(0);
    }
    var digits = Math.max(0, Math.min(12, 2 - Math.floor(Math.log10(Math.abs(number)))));
    return number.toLocaleString(lang, { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  }

  /* Fill colour of a cell for the run's method and the slider's step; null: not drawn. */
  function cellColour(props) {
    var method = hsRun && hsRun.method;
    if (method === "kde") {
      return densityColour(props.density);
    }
    if (method === "forecast") {
      return props.zone ? scoreColour(props.score) : null;
    }
    if (method === "emerging") {
      var step = currentStep();
      if (step > 0) {
        var bins = props.step_bins || [];
        var bin = Number(bins[step - 1]) || 0;
        return bin ? (hs.binColours || {})[String(bin)] : null;
      }
      var entry = emergingEntry(Number(props.emerging) || 0);
      return props.emerging && entry ? entry.colour : null;
    }
    var colour = (hs.binColours || {})[String(props.gi_bin)];
    return props.gi_bin ? colour : null;
  }

  function cellStyle(feature) {
    var colour = cellColour(feature.properties || {});
    if (!colour) {
      return { stroke: false, fill: false };
    }
    return {
      stroke: true,
      fill: true,
      color: colour,
      weight: 0.5,
      opacity: 0.9,
      fillColor: colour,
      fillOpacity: 0.65,
    };
  }

  /* Incidents per km²: whole from 10 on, one decimal below (as the run page writes it). */
  function formatDensity(value) {
    var tenths = Math.round((Number(value) || 0) * 10) / 10;
    return formatNumber(Math.abs(tenths) < 10 ? tenths : Math.round(tenths));
  }

  function detailsList(rows) {
    var list = el("dl", "incident-popup-details");
    rows.forEach(function (row) {
      definitionRow(list, row[0], row[1]);
    });
    return list;
  }

  function cellPopup(props) {
    var box = el("div", "hotspot-popup hotspot-cell-popup");
    box.appendChild(el("h3", "incident-popup-title", hsLabels.cell));
    var rows = [[hsLabels.incidents, formatNumber(Number(props.count) || 0)]];
    var method = hsRun && hsRun.method;
    if (method === "kde") {
      rows.push([
        hsLabels.density,
        format(hsLabels.perKm2, { value: formatDensity(props.density) }),
      ]);
    } else if (method === "forecast") {
      rows.push([hsLabels.score, formatScore(props.score)]);
      rows.push([hsLabels.ranking, String(hsCellMeta.chosen_label || hsCellMeta.chosen || "")]);
      rows.push([hsLabels.zoneRank, props.zone ? String(props.zone) : ""]);
    } else if (method === "emerging") {
      var entry = emergingEntry(Number(props.emerging) || 0);
      rows.push([hsLabels.pattern, entry ? entry.label : props.emerging_label]);
      var step = currentStep();
      if (step > 0) {
        var bin = binEntry(Number((props.step_bins || [])[step - 1]) || 0);
        var steps = hsCellMeta.steps || [];
        rows.push([stepDate(steps[step - 1]), bin ? bin.label : ""]);
      }
    } else {
      var z = Number(props.gi_z);
      rows.push([hsLabels.giZ, isFinite(z) ? z.toFixed(2) : ""]);
      var found = binEntry(Number(props.gi_bin) || 0);
      rows.push(["", found ? found.label : ""]);
    }
    box.appendChild(detailsList(rows));
    return box;
  }

  function zonePopup(props) {
    var box = el("div", "hotspot-popup hotspot-zone-popup");
    box.setAttribute("data-rank", String(props.rank));
    box.appendChild(el("h3", "incident-popup-title", format(hsLabels.zone, { rank: props.rank })));
    var areaKm2 = (Number(props.area_m2) || 0) / 1e6;
    var tops = (props.top_categories || []).slice(0, 5).map(function (item) {
      return categoryName(item.code) + " (" + formatNumber(Number(item.count) || 0) + ")";
    });
    box.appendChild(
      detailsList([
        [hsLabels.rank, String(props.rank)],
        [hsLabels.incidents, formatNumber(Number(props.incident_count) || 0)],
        [hsLabels.area, formatNumber(Math.round(areaKm2 * 100) / 100) + " km²"],
        [
          hsLabels.density,
          format(hsLabels.perKm2, { value: formatDensity(props.density_per_km2) }),
        ],
        [hsLabels.share, formatNumber(Math.round((Number(props.share) || 0) * 1000) / 10) + " %"],
        [hsLabels.topCategories, tops.join(", ")],
      ])
    );
    if (hsRun) {
      var link = el("a", "hotspot-run-link", hsLabels.runPageLink);
      link.href = runPageUrl(hsRun.id);
      box.appendChild(link);
    }
    return box;
  }

  function legendItem(colour, text, extraClass) {
    var item = el("li", extraClass || null);
    var swatch = el("span", "legend-swatch hotspot-swatch");
    swatch.style.background = colour;
    swatch.setAttribute("aria-hidden", "true");
    item.appendChild(swatch);
    item.appendChild(el("span", null, text));
    return item;
  }

  function runHasZones(run) {
    return Boolean(run) && Number((run.summary || {}).zones) > 0;
  }

  /* Only the toggles of the layers the run has: DBSCAN draws no cells, KDE and
     emerging runs no zones. */
  function showLayerToggles(run) {
    hsCellsLabel.hidden = Boolean(run) && !CELL_ENDPOINT[run.method];
    hsZonesLabel.hidden = Boolean(run) && !runHasZones(run);
  }

  function renderLegend() {
    if (!hsLegend) {
      return;
    }
    hsLegendItems.textContent = "";
    if (!hsRun) {
      hsLegend.hidden = true;
      return;
    }
    var method = hsRun.method;
    var step = currentStep();
    var steps = hsCellMeta.steps || [];
    if (method === "kde") {
      hsLegendTitle.textContent = hsLabels.densityTitle;
      var ramp = hs.densityRamp || [];
      var top = Number(hsCellMeta.max_density) || 0;
      ramp.forEach(function (colour, index) {
        var low = (top * index) / ramp.length;
        var high = (top * (index + 1)) / ramp.length;
        hsLegendItems.appendChild(
          legendItem(colour, formatNumber(Math.round(low)) + "–" + formatNumber(Math.round(high)))
        );
      });
    } else if (method === "forecast") {
      hsLegendTitle.textContent = hsLabels.forecastTitle;
      var scores = hs.scoreRamp || [];
      var lowest = Number(hsCellMeta.min_score);
      var highest = Number(hsCellMeta.max_score);
      if (isFinite(lowest) && isFinite(highest) && hsCellMeta.max_score !== null) {
        scores.forEach(function (colour, index) {
          var from = lowest + ((highest - lowest) * index) / scores.length;
          var to = lowest + ((highest - lowest) * (index + 1)) / scores.length;
          hsLegendItems.appendChild(
            legendItem(colour, formatScore(from) + "–" + formatScore(to), "score-" + index)
          );
        });
      }
    } else if (method === "emerging" && step === 0) {
      hsLegendTitle.textContent = hsLabels.emergingTitle;
      (hs.emerging || []).forEach(function (entry) {
        if (entry.code !== 0) {
          hsLegendItems.appendChild(legendItem(entry.colour, entry.label, "emerging-" + entry.key));
        }
      });
    } else if (method !== "dbscan") {
      hsLegendTitle.textContent =
        method === "emerging" && step > 0
          ? format(hsLabels.stepTitle, { step: stepDate(steps[step - 1]) })
          : hsLabels.binsTitle;
      (hs.bins || []).forEach(function (entry) {
        if (entry.bin !== 0) {
          hsLegendItems.appendChild(legendItem(entry.colour, entry.label, "bin-" + entry.bin));
        }
      });
    } else {
      hsLegendTitle.textContent = "";
    }
    // KDE and emerging runs have no zones: no hint about clicking one.
    hsZoneHint.hidden = !runHasZones(hsRun);
    hsLegend.hidden = false;
    mapNode.setAttribute("data-hotspot-legend", method);
  }

  function clearHotspotLayers() {
    hsCellChannel.abort();
    hsZoneChannel.abort();
    [hsCellLayer, hsZoneLayer].forEach(function (layer) {
      if (layer && map.hasLayer(layer)) {
        map.removeLayer(layer);
      }
    });
    hsCellLayer = null;
    hsZoneLayer = null;
    hsCellMeta = {};
    hsCellView = null;
    mapNode.removeAttribute("data-hotspot-cells");
    mapNode.removeAttribute("data-hotspot-zones");
  }

  function drawnCount(layer) {
    var count = 0;
    layer.eachLayer(function (featureLayer) {
      if (cellColour(featureLayer.feature.properties || {})) {
        count += 1;
      }
    });
    return count;
  }

  function loadFailed() {
    ctx.setStatus(hsLabels.loadError, true);
  }

  function loadCells() {
    var endpoint = hsRun && CELL_ENDPOINT[hsRun.method];
    if (!endpoint || !hsCellsToggle.checked) {
      return Promise.resolve();
    }
    var run = hsRun;
    var params = {};
    if (run.method === "gistar") {
      params.significant = "true";
    } else if (run.method === "kde") {
      params.min_density = "0.01";
    }
    var area = map.getBounds().pad(CELL_MARGIN);
    var zoom = ctx.apiZoom();
    params.bbox = boundsBBox(area);
    params.zoom = zoom;
    if (!params.bbox) {
      return Promise.resolve();
    }
    return hsCellChannel.get(apiUrl(runUrl(run.id, endpoint + "/"), params), {
      wanted: function () {
        return hsRun === run;
      },
      draw: function (data) {
        hsCellMeta = data;
        hsCellView = { bounds: area, zoom: zoom, truncated: Boolean(data.truncated) };
        var layer = L.geoJSON(data, {
          renderer: hsCellRenderer,
          style: cellStyle,
          onEachFeature: function (feature, featureLayer) {
            featureLayer.bindPopup(function () {
              return cellPopup(feature.properties || {});
            });
          },
        });
        if (hsCellLayer) {
          map.removeLayer(hsCellLayer);
        }
        hsCellLayer = layer.addTo(map);
        mapNode.setAttribute("data-hotspot-cells", String(drawnCount(layer)));
        if (data.truncated) {
          ctx.setStatus(hsLabels.truncated);
        }
        renderLegend();
      },
      fail: loadFailed,
    });
  }

  function loadZones() {
    if (!hsRun || !hsZonesToggle.checked) {
      return Promise.resolve();
    }
    var run = hsRun;
    return hsZoneChannel.get(apiUrl(runUrl(run.id, "zones/"), {}), {
      wanted: function () {
        return hsRun === run;
      },
      draw: function (data) {
        var layer = L.geoJSON(data, {
          renderer: hsZoneRenderer,
          style: function () {
            return {
              color: hs.zoneColour || "#5a1846",
              weight: 2.5,
              opacity: 0.95,
              fillColor: hs.zoneColour || "#5a1846",
              fillOpacity: 0.06,
            };
          },
          onEachFeature: function (feature, featureLayer) {
            var props = feature.properties || {};
            featureLayer.bindPopup(
              function () {
                return zonePopup(props);
              },
              { className: "incident-popup-wrap", maxWidth: 320, autoPanPadding: [16, 16] }
            );
            featureLayer.on("add", function () {
              var element = tagLayer(featureLayer, { "data-zone-rank": props.rank });
              if (element) {
                element.classList.add("hotspot-zone");
              }
            });
          },
        });
        if (hsZoneLayer) {
          map.removeLayer(hsZoneLayer);
        }
        hsZoneLayer = layer.addTo(map);
        mapNode.setAttribute("data-hotspot-zones", String((data.features || []).length));
      },
      fail: loadFailed,
    });
  }

  function setupStepSlider() {
    var steps = (hsRun && hsRun.method === "emerging" && hsRun.params && hsRun.params.steps) || [];
    hsStepBox.hidden = !steps.length;
    hsStep.max = String(steps.length);
    hsStep.value = "0";
    updateStepLabel();
  }

  function updateStepLabel() {
    var step = currentStep();
    var steps = (hsRun && hsRun.params && hsRun.params.steps) || [];
    hsStepLabel.textContent = step > 0 ? stepDate(steps[step - 1]) : hsLabels.wholePeriod;
    mapNode.setAttribute("data-hotspot-step", String(step));
  }

  function showRunInfo(run) {
    hsInfo.textContent = "";
    if (!run) {
      hsInfo.hidden = true;
      return;
    }
    var summary = run.summary || {};
    hsInfo.appendChild(
      document.createTextNode(
        format(hsLabels.runInfo, {
          incidents: formatNumber(Number(summary.incidents) || 0),
          zones: formatNumber(Number(summary.zones) || 0),
        }) + " "
      )
    );
    var link = el("a", "hotspot-run-link", hsLabels.runPageLink);
    link.href = runPageUrl(run.id);
    hsInfo.appendChild(link);
    hsInfo.hidden = false;
  }

  function showRun(id, fit) {
    clearHotspotLayers();
    hsRun = null;
    mapNode.setAttribute("data-hotspot-run", id ? String(id) : "");
    if (!id) {
      showRunInfo(null);
      showLayerToggles(null);
      renderLegend();
      hsStepBox.hidden = true;
      return Promise.resolve();
    }
    return getJSON(runUrl(id, ""))
      .then(function (run) {
        if (String(hsRunSelect.value) !== String(run.id)) {
          return;
        }
        hsRun = run;
        showRunInfo(run);
        showLayerToggles(run);
        setupStepSlider();
        deps.prefill(run);
        renderLegend();
        if (fit && Array.isArray(run.districts) && run.districts.length === 1) {
          // A run over one district, chosen or just finished: its incidents only.
          deps.focusDistrict(run.region, run.districts[0]);
        }
        var bounds = fit ? bboxBounds(run.bbox) : null;
        if (bounds) {
          map.fitBounds(bounds, L.extend(deps.fitOptions(bounds), { animate: false }));
        }
        return Promise.all([loadCells(), loadZones()]);
      })
      .catch(function (error) {
        logError(error);
        ctx.setStatus(hsLabels.loadError, true);
      });
  }

  function runOption(run) {
    var option = el(
      "option",
      null,
      format(hsLabels.runOption, {
        id: run.id,
        method: run.method_label,
        region: run.region_name,
        start: run.date_from,
        end: run.date_to,
      })
    );
    option.value = String(run.id);
    option.setAttribute("data-region", String(run.region));
    return option;
  }

  /* The region whose extent holds the centre of the view (the district filter's region
     when one is chosen). */
  function regionInView() {
    var district = deps.districts.selected();
    if (district) {
      return district.region;
    }
    var centre = map.getCenter();
    var found = null;
    hsRegions.forEach(function (region) {
      var bounds = found ? null : bboxBounds(region.bbox);
      if (bounds && bounds.contains(centre)) {
        found = region.code;
      }
    });
    return found;
  }

  function loadRunList() {
    return getJSON(apiUrl(hs.runsUrl, { status: "succeeded", limit: 100 })).then(
      function (page) {
        var runs = (page && page.results) || [];
        runs.forEach(function (run) {
          hsRunSelect.appendChild(runOption(run));
        });
        return runs;
      }
    );
  }

  function chooseInitialRun(runs) {
    var wanted = new URLSearchParams(window.location.search).get("run");
    if (wanted && /^\d+$/.test(wanted)) {
      if (!runs.some(function (run) { return String(run.id) === wanted; })) {
        var option = el("option", null, "#" + wanted);
        option.value = wanted;
        hsRunSelect.appendChild(option);
      }
      hsRunSelect.value = wanted;
      return showRun(wanted, true);
    }
    if (!runs.length) {
      hsInfo.textContent = hsLabels.noRuns;
      hsInfo.hidden = false;
      return Promise.resolve();
    }
    var region = regionInView();
    var pick = runs.filter(function (run) {
      return run.region === region;
    })[0] || runs[0];
    hsRunSelect.value = String(pick.id);
    return showRun(pick.id, false);
  }

  hsRunSelect.addEventListener("change", function () {
    showRun(hsRunSelect.value, true);
  });
  /* A layer's toggle turned off: nothing more is loaded for it, and it leaves the map. */
  function hideLayer(channel, layer, attribute) {
    channel.abort();
    if (layer) {
      map.removeLayer(layer);
    }
    mapNode.setAttribute(attribute, "0");
    return null;
  }
  hsCellsToggle.addEventListener("change", function () {
    if (hsCellsToggle.checked) {
      loadCells();
    } else {
      hsCellLayer = hideLayer(hsCellChannel, hsCellLayer, "data-hotspot-cells");
    }
  });
  hsZonesToggle.addEventListener("change", function () {
    if (hsZonesToggle.checked) {
      loadZones();
    } else {
      hsZoneLayer = hideLayer(hsZoneChannel, hsZoneLayer, "data-hotspot-zones");
    }
  });
  hsStep.addEventListener("input", function () {
    updateStepLabel();
    if (hsCellLayer) {
      hsCellLayer.setStyle(cellStyle);
      mapNode.setAttribute("data-hotspot-cells", String(drawnCount(hsCellLayer)));
    }
    renderLegend();
  });
  /* The drawn cells still serve the view: it is inside the area they were asked for,
     at their zoom (the server trims coordinates to the zoom), and none were left out. */
  function cellsCoverView() {
    return (
      hsCellView !== null &&
      !hsCellView.truncated &&
      hsCellView.zoom === ctx.apiZoom() &&
      hsCellView.bounds.contains(map.getBounds())
    );
  }

  map.on("moveend", function () {
    if (hsRun && hsCellsToggle.checked && CELL_ENDPOINT[hsRun.method] && !cellsCoverView()) {
      loadCells();
    }
  });

  /* The runs listed and the one to show first, once the regions are known. */
  function start(regions) {
    hsRegions = regions;
    return loadRunList()
      .then(chooseInitialRun)
      .catch(function (error) {
        logError(error);
        ctx.setStatus(hsLabels.loadError, true);
      });
  }

  return {
    start: start,
    showRun: showRun,
    runOption: runOption,
    runUrl: runUrl,
    select: hsRunSelect,
  };
}
