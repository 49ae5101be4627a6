/*
 * Barrio planner map: recorded incidents for police planners, from the planners-only
 * incident API under /api/v1/.
 *
 * Below `pointsMinZoom` the map shows the server's grid clusters (a circle sized by its
 * count, the count written inside); from that zoom on, the raw incidents of the view,
 * grouped on screen by Leaflet.markercluster. A heat layer (Leaflet.heat) can be laid
 * over them. The panel holds the filters (dates, district, categories by family) and the
 * counts per category for the current view and filters; the CSV export link carries the
 * same filters.
 *
 * Settings and translated labels come from the page (json_script). Every string that
 * comes from data (category, source, district names) reaches the DOM as text:
 * textContent, DOM nodes for popups and icons, never innerHTML. Every request goes to
 * this page's own origin, and a request still in flight is aborted as soon as the view
 * or the filters change (AbortController).
 *
 * This module creates the map, wires the layers and panels together and refreshes them
 * when the view or the filters change. Each layer or panel is a module of its own under
 * maps/planner/: url_state (the view in the address), panel (the collapsible panel and
 * the legend), filters (the filter form and category names), districts, incidents
 * (clusters and points), stats (counts per category), heat, hotspots (a run's cells and
 * zones), run_form ("Run analysis"), spaces (recovered public spaces) and batch (one
 * import batch shown alone, ?batch=); channels keeps one request of each kind in flight.
 * They share maps/common.js.
 */
import {
  apiZoom,
  bboxBounds,
  chosenRegion,
  createMap,
  getJSON,
  logError,
  mapPage,
  statusSetter,
  viewBBox,
  watchRegionPicker,
} from "./common.js";
import { createBatchFilter } from "./planner/batch.js";
import { channelsFor } from "./planner/channels.js";
import { createDistricts } from "./planner/districts.js";
import { createFilters } from "./planner/filters.js";
import { createHeat } from "./planner/heat.js";
import { createHotspots } from "./planner/hotspots.js";
import { createIncidents } from "./planner/incidents.js";
import { createPanel } from "./planner/panel.js";
import { createRunForm } from "./planner/run_form.js";
import { addPlannerSpaces } from "./planner/spaces.js";
import { createStats } from "./planner/stats.js";
import { followHash, viewFromHash, writeHash } from "./planner/url_state.js";

var MAX_API_ZOOM = 24;
var FULL_DETAIL_ZOOM = 16; // the boundary API stops simplifying from this zoom on
var DEBOUNCE_MS = 250;
var BATCH_MAX_ZOOM = 16;

function main(config, labels, mapNode) {
  var lang = document.documentElement.lang || "es";
  var numberFormat = new Intl.NumberFormat(lang);
  var setStatus = statusSetter(document.getElementById("map-status"));

  // --- map, panes, controls ------------------------------------------------------

  var map = createMap(mapNode, config, labels);
  map.createPane("districts").style.zIndex = "350"; // under the heat canvas and markers
  /* Stacking, bottom to top: districts, hotspot cells (a canvas), the heat map, the
     server's incident clusters (markerPane, 600), hotspot zones, recovered spaces
     (planner/spaces.js), raw incidents. A zone is drawn over the clusters, which only
     summarise counts (a click zooms in), so a click inside it opens its figures; raw
     incidents, drawn from POINTS_MIN_ZOOM on, stay above it so that each one can be
     opened. The "Incidents" toggle hides both. */
  map.createPane("incidentPoints").style.zIndex = "620";

  followHash(map);

  var started = false;
  var ctx = {
    map: map,
    mapNode: mapNode,
    config: config,
    labels: labels,
    api: config.api || {},
    lang: lang,
    pointsMinZoom: config.pointsMinZoom || 15,
    setStatus: setStatus,
    channel: channelsFor(mapNode),
    formatNumber: function (n) {
      return numberFormat.format(n);
    },
    apiZoom: function () {
      return apiZoom(map, MAX_API_ZOOM);
    },
    viewBBox: function () {
      return viewBBox(map);
    },
    started: function () {
      return started;
    },
  };

  var panel = createPanel(ctx);
  var districts = createDistricts(ctx);
  var filters = createFilters(ctx, districts);
  var batchFilter = createBatchFilter(ctx);
  var incidents = createIncidents(ctx, filters);
  var stats = createStats(ctx, filters);
  var heat = createHeat(ctx, filters);

  // --- refreshing ---------------------------------------------------------------------

  var refreshTimer = null;

  function abortAll() {
    incidents.abort();
    stats.abort();
    heat.abort();
  }

  function refresh() {
    window.clearTimeout(refreshTimer);
    refreshTimer = null;
    var filterParams = batchFilter.params(filters.currentFilters());
    filters.updateExportLink(filterParams);
    var bbox = ctx.viewBBox();
    if (!filterParams || !bbox) {
      incidents.clear();
      heat.clear();
      stats.abort();
      stats.render({ total: 0, by_category: [] });
      return;
    }
    if (incidents.isOn()) {
      incidents.load(filterParams, bbox);
    } else {
      incidents.clear();
    }
    stats.load(filterParams, bbox);
    if (heat.isOn()) {
      heat.load(filterParams, bbox);
    }
  }

  function scheduleRefresh() {
    if (!started) {
      return;
    }
    window.clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(refresh, DEBOUNCE_MS);
  }

  // The view is changing: what is in flight is for a view that is going away.
  map.on("movestart", function () {
    if (started) {
      abortAll();
    }
  });

  map.on("moveend", function () {
    if (!started) {
      return;
    }
    writeHash(map);
    // Boundaries come simplified for the zoom they were asked at: ask again, finer.
    if (districts.wantFiner(FULL_DETAIL_ZOOM)) {
      districts.load().catch(function (error) {
        logError(error);
      });
    }
    scheduleRefresh();
  });

  filters.form.addEventListener("change", function (event) {
    if (event.target === districts.select) {
      districts.restyle();
      // To the chosen district, or back to all of them (moveend refreshes too; the
      // refresh below covers a view that does not move).
      districts.fitToChoice(panel.fitOptions);
    }
    scheduleRefresh();
  });

  batchFilter.onDismiss(scheduleRefresh);

  filters.form.addEventListener("submit", function (event) {
    event.preventDefault();
    refresh();
  });

  filters.form.addEventListener("reset", function () {
    // The form resets its fields after this event: read them on the next turn.
    window.setTimeout(function () {
      filters.afterReset();
      districts.restyle();
      scheduleRefresh();
    }, 0);
  });

  // --- hotspot runs and "Run analysis" --------------------------------------------

  var runForm = null;
  var hotspots = createHotspots(ctx, {
    filters: filters,
    districts: districts,
    fitOptions: panel.fitOptions,
    prefill: function (run) {
      runForm.prefill(run);
    },
    /* The incident filter set to a district without moving the map: the run being shown
       fits its own area. */
    focusDistrict: function (region, code) {
      if (districts.focus(region, code)) {
        scheduleRefresh();
      }
    },
  });
  runForm = createRunForm(ctx, hotspots, districts);

  // --- start-up -----------------------------------------------------------------------

  var syntheticNotice = document.getElementById("synthetic-notice");

  function fitRegions(regions) {
    var bounds = null;
    regions.forEach(function (region) {
      var extent = bboxBounds(region.bbox);
      if (extent) {
        bounds = bounds ? bounds.extend(extent) : extent;
      }
    });
    if (syntheticNotice && regions.some(function (r) { return r.synthetic; })) {
      syntheticNotice.hidden = false;
    }
    var chosen = chosenRegion(config, regions);
    if (chosen) {
      bounds = bboxBounds(chosen.bbox);
    }
    var view = viewFromHash();
    var batchBounds = batchFilter.bounds();
    if (view) {
      map.setView(view.center, view.zoom, { animate: false });
    } else if (batchBounds) {
      // A batch shown alone opens on its incidents (a single one not closer than a street).
      var fit = L.extend(panel.fitOptions(batchBounds), { animate: false, maxZoom: BATCH_MAX_ZOOM });
      map.fitBounds(batchBounds, fit);
    } else if (bounds && bounds.isValid()) {
      map.fitBounds(bounds, L.extend(panel.fitOptions(bounds), { animate: false }));
    }
  }

  var regionCache = [];

  function start() {
    var regionNames = {};
    var regionList = [];
    var regions = getJSON(ctx.api.regions).then(function (list) {
      list = Array.isArray(list) ? list : [];
      list.forEach(function (region) {
        regionNames[region.code] = region.name;
      });
      regionList = list;
      regionCache = list;
      fitRegions(list);
      return list;
    });
    var categories = getJSON(ctx.api.categories).then(function (list) {
      filters.buildCategoryFilter(Array.isArray(list) ? list : []);
    });
    Promise.all([regions, categories])
      .then(function () {
        started = true;
        mapNode.setAttribute("data-zoom", String(map.getZoom()));
        writeHash(map);
        refresh();
        return districts
          .load()
          .then(
            function (data) {
              var features = (data && data.features) || [];
              var chosen = chosenRegion(config, regionList);
              districts.fillSelect(features, regionNames, chosen && chosen.code);
              mapNode.setAttribute("data-districts", String(features.length));
            },
            function (error) {
              logError(error);
              setStatus(labels.boundaryError, true);
            }
          )
          .then(function () {
            runForm.fillRegions(regionList, regionNames);
            return hotspots.start(regionList);
          });
      })
      .catch(function (error) {
        logError(error);
        setStatus(labels.loadError, true);
      });
  }

  watchRegionPicker(config, function (code) {
    var region = chosenRegion(config, regionCache);
    var bounds = region && bboxBounds(region.bbox);
    if (bounds) {
      map.fitBounds(bounds, panel.fitOptions(bounds));
    }
    districts.showRegion(code);
  });

  start();
  // The recovered spaces' panel: its settings' URL is on this module's script tag.
  var script = document.querySelector("script[data-spaces-config]");
  addPlannerSpaces(map, script && script.getAttribute("data-spaces-config"));
}

var page = mapPage("planner-config", "planner-labels");
if (page) {
  main(page.config, page.labels, page.mapNode);
}
