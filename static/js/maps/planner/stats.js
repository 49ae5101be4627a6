/*
 * Planner map: the panel's counts per category for the view and the filters.
 */
import { apiUrl, el, format } from "../common.js";

export function createStats(ctx, filters) {
  var labels = ctx.labels;
  var formatNumber = ctx.formatNumber;
  var categoryName = filters.categoryName;
  var statsChannel = ctx.channel("stats");
  var totalNode = document.getElementById("stats-total");
  var countsBody = document.querySelector("#category-counts tbody");

  function render(data) {
    var total = Number(data.total) || 0;
    totalNode.setAttribute("data-total", String(total));
    totalNode.classList.remove("is-loading");
    totalNode.textContent =
      total === 0
        ? labels.noIncidents
        : total === 1
          ? labels.totalOne
          : format(labels.total, { count: formatNumber(total) });
    countsBody.textContent = "";
    (data.by_category || [])
      .filter(function (row) {
        return Number(row.count) > 0;
      })
      .sort(function (a, b) {
        return (
          b.count - a.count ||
          categoryName(a.code, a.name).localeCompare(categoryName(b.code, b.name), ctx.lang)
        );
      })
      .forEach(function (row) {
        var tr = el("tr");
        tr.setAttribute("data-code", String(row.code));
        tr.setAttribute("data-count", String(row.count));
        var th = el("th");
        th.scope = "row";
        var cell = el("span", "count-label");
        var known = filters.category(row.code);
        var family = row.family === "incivility" ? "incivility" : "crime";
        if (known && known.unclassified) {
          family = "unclassified";
        }
        cell.appendChild(el("span", "family-swatch family-" + family));
        cell.appendChild(el("span", "category-name", categoryName(row.code, row.name)));
        if (row.sensitive) {
          cell.appendChild(filters.sensitiveBadge());
        }
        th.appendChild(cell);
        tr.appendChild(th);
        tr.appendChild(el("td", "count", formatNumber(row.count)));
        countsBody.appendChild(tr);
      });
  }

  function load(filterParams, bbox) {
    totalNode.classList.add("is-loading");
    var url = apiUrl(ctx.api.stats, L.extend({}, filterParams, { bbox: bbox }));
    return statsChannel.get(url, {
      draw: render,
      fail: function () {
        totalNode.classList.remove("is-loading");
        totalNode.textContent = labels.loadError;
      },
    });
  }

  return { load: load, render: render, abort: function () { statsChannel.abort(); } };
}
