/*
 * Planner map: the panel's filters (dates, district, categories by family) as the
 * parameters every incident endpoint takes, the CSV export link that carries them, and
 * the category names (in the page's language) the other layers show.
 */
import { apiUrl, el, format } from "../common.js";

var FAMILY_ORDER = ["crime", "incivility"];

export function createFilters(ctx, districts) {
  var labels = ctx.labels;
  var lang = ctx.lang;
  var form = document.getElementById("planner-filters");
  var fromInput = document.getElementById("filter-from");
  var toInput = document.getElementById("filter-to");
  var groupsNode = document.getElementById("category-groups");
  var filterError = document.getElementById("filter-error");
  var exportLink = document.getElementById("export-csv");
  var categoriesByCode = {};
  var categoryCount = 0;

  function category(code) {
    return categoriesByCode[code];
  }

  function categoryName(code, fallback) {
    var found = categoriesByCode[code];
    if (found) {
      return found["name_" + lang] || found.name || fallback || code;
    }
    return fallback || code;
  }

  function sensitiveBadge() {
    var badge = el("span", "badge badge-sensitive", labels.sensitive);
    badge.title = labels.sensitiveHint;
    return badge;
  }

  function categoryGroupsOf(categories) {
    var groups = {};
    FAMILY_ORDER.forEach(function (family) {
      groups[family] = [];
    });
    var unclassified = [];
    categories.forEach(function (item) {
      if (item.unclassified) {
        unclassified.push(item);
      } else {
        (groups[item.family] = groups[item.family] || []).push(item);
      }
    });
    var byName = function (a, b) {
      return categoryName(a.code).localeCompare(categoryName(b.code), lang);
    };
    var families = Object.keys(groups).sort(function (a, b) {
      var ia = FAMILY_ORDER.indexOf(a);
      var ib = FAMILY_ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || (a < b ? -1 : a > b ? 1 : 0);
    });
    var result = families
      .filter(function (family) {
        return groups[family].length;
      })
      .map(function (family) {
        return {
          key: family,
          title: (labels.families || {})[family] || family,
          items: groups[family].sort(byName),
        };
      });
    if (unclassified.length) {
      // Source labels nobody has mapped yet: listed last, whatever their family.
      result.push({ key: "unclassified", title: labels.unclassified, items: unclassified.sort(byName) });
    }
    return result;
  }

  function syncGroupToggle(fieldset) {
    var boxes = fieldset.querySelectorAll("input[name=category]");
    var checked = fieldset.querySelectorAll("input[name=category]:checked").length;
    var all = fieldset.querySelector("input.category-all");
    if (all) {
      all.checked = checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
  }

  function buildCategoryFilter(categories) {
    categoriesByCode = {};
    categories.forEach(function (item) {
      categoriesByCode[item.code] = item;
    });
    categoryCount = categories.length;
    groupsNode.textContent = "";
    categoryGroupsOf(categories).forEach(function (group) {
      var fieldset = el("fieldset", "category-group category-group-" + group.key);
      fieldset.setAttribute("data-family", group.key);
      var legendNode = el("legend", "category-group-title");
      var allLabel = el("label", "category-all-label");
      var all = el("input", "category-all");
      all.type = "checkbox";
      all.defaultChecked = true; // what the form's reset button returns to
      all.checked = true;
      all.setAttribute("aria-label", format(labels.allInFamily, { family: group.title }));
      allLabel.appendChild(all);
      allLabel.appendChild(el("span", "family-swatch family-" + group.key));
      allLabel.appendChild(el("span", null, group.title));
      legendNode.appendChild(allLabel);
      fieldset.appendChild(legendNode);

      var list = el("ul", "category-list");
      group.items.forEach(function (item) {
        var row = el("li", "category-item");
        var label = el("label");
        var box = el("input");
        box.type = "checkbox";
        box.name = "category";
        box.value = item.code;
        box.defaultChecked = true;
        box.checked = true;
        label.appendChild(box);
        label.appendChild(el("span", "category-name", categoryName(item.code)));
        if (item.sensitive) {
          row.classList.add("is-sensitive");
          label.appendChild(sensitiveBadge());
        }
        row.appendChild(label);
        list.appendChild(row);
      });
      fieldset.appendChild(list);

      all.addEventListener("change", function () {
        fieldset.querySelectorAll("input[name=category]").forEach(function (box) {
          box.checked = all.checked;
        });
        all.indeterminate = false;
      });
      list.addEventListener("change", function () {
        syncGroupToggle(fieldset);
      });
      groupsNode.appendChild(fieldset);
    });
    groupsNode.setAttribute("aria-busy", "false");
  }

  function selectedCategories() {
    return Array.prototype.map.call(
      groupsNode.querySelectorAll("input[name=category]:checked"),
      function (box) {
        return box.value;
      }
    );
  }

  /* The filter parameters shared by every incident endpoint, or null when they select
     nothing at all (no category ticked, or dates the wrong way round). */
  function currentFilters() {
    var filters = {};
    var problem = "";
    if (fromInput.value) {
      filters.from = fromInput.value;
    }
    if (toInput.value) {
      filters.to = toInput.value;
    }
    if (filters.from && filters.to && filters.from > filters.to) {
      problem = labels.badDates;
    }
    if (categoryCount) {
      var codes = selectedCategories();
      if (!codes.length) {
        problem = problem || labels.noCategories;
      } else if (codes.length < categoryCount) {
        filters.category = codes.join(",");
      }
    }
    var district = districts.selected();
    if (district) {
      filters.region = district.region;
      filters.district = district.code;
    }
    filterError.textContent = problem;
    filterError.hidden = !problem;
    return problem ? null : filters;
  }

  function updateExportLink(filters) {
    if (!exportLink) {
      return;
    }
    if (filters) {
      exportLink.href = apiUrl(ctx.api.export, filters);
      exportLink.removeAttribute("aria-disabled");
    } else {
      exportLink.removeAttribute("href");
      exportLink.setAttribute("aria-disabled", "true");
    }
  }

  /* What the form's reset leaves to the script: the date bounds and the family boxes. */
  function afterReset() {
    toInput.min = "";
    fromInput.max = "";
    groupsNode.querySelectorAll("fieldset.category-group").forEach(syncGroupToggle);
  }

  fromInput.addEventListener("change", function () {
    toInput.min = fromInput.value;
  });
  toInput.addEventListener("change", function () {
    fromInput.max = toInput.value;
  });

  return {
    form: form,
    category: category,
    categoryName: categoryName,
    sensitiveBadge: sensitiveBadge,
    buildCategoryFilter: buildCategoryFilter,
    currentFilters: currentFilters,
    updateExportLink: updateExportLink,
    afterReset: afterReset,
  };
}
