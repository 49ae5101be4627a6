/*
 * Planner map: the "Run analysis" panel. It starts a hotspot run through the API (the
 * method's own fields only), follows its progress, and shows the run once it succeeded
 * (or the identical run the server already had).
 */
import { el, format, getJSON, logError } from "../common.js";

/* hotspots: the run layers (hotspots.js), which list and show the runs; districts: the
   districts loaded (a run may be limited to one). */
export function createRunForm(ctx, hotspots, districts) {
  var mapNode = ctx.mapNode;
  var hs = ctx.config.hotspots || {};
  var hsLabels = ctx.labels.hotspots || {};
  var hsNode = function (id) {
    return document.getElementById(id);
  };
  var hsRunSelect = hotspots.select;
  var hsForm = hsNode("hotspot-form");
  var hsMethod = hsNode("hotspot-method");
  var hsRegionSelect = hsNode("hotspot-region");
  var hsDistrictSelect = hsNode("hotspot-district");
  var hsFrom = hsNode("hotspot-from");
  var hsTo = hsNode("hotspot-to");
  var hsFormError = hsNode("hotspot-form-error");
  var hsSubmit = hsNode("hotspot-submit");
  var hsProgressBox = hsNode("hotspot-progress-box");
  var hsProgress = hsNode("hotspot-progress");
  var hsProgressText = hsNode("hotspot-progress-text");
  var hsDbscanHint = hsNode("hotspot-dbscan-hint");

  function showMethodFields() {
    var method = hsMethod.value;
    var params = (hs.params || {})[method] || [];
    hsForm.querySelectorAll("[data-param]").forEach(function (field) {
      field.hidden = params.indexOf(field.getAttribute("data-param")) < 0;
    });
    // Density clustering over a whole metro area chains every hotspot into one cluster.
    hsDbscanHint.hidden = method !== "dbscan";
    hsDbscanHint.classList.toggle("is-warning", method === "dbscan" && !hsDistrictSelect.value);
  }

  function fillRunDistricts() {
    var region = hsRegionSelect.value;
    var keep = hsDistrictSelect.value;
    while (hsDistrictSelect.options.length > 1) {
      hsDistrictSelect.remove(1);
    }
    districts
      .all()
      .filter(function (district) {
        return district.region === region;
      })
      .sort(function (a, b) {
        return String(a.name).localeCompare(String(b.name), ctx.lang);
      })
      .forEach(function (district) {
        var option = el("option", null, district.name);
        option.value = district.code;
        hsDistrictSelect.appendChild(option);
      });
    hsDistrictSelect.value = keep;
    if (hsDistrictSelect.value !== keep) {
      hsDistrictSelect.value = "";
    }
  }

  function prefillForm(run) {
    if (!hsFrom.value && !hsTo.value) {
      hsFrom.value = run.date_from;
      hsTo.value = run.date_to;
    }
    if (run.region && hsRegionSelect.value !== run.region) {
      hsRegionSelect.value = run.region;
      fillRunDistricts();
    }
  }

  function formError(text) {
    hsFormError.textContent = text || "";
    hsFormError.hidden = !text;
  }

  function errorText(body) {
    if (!body || typeof body !== "object") {
      return "";
    }
    return Object.keys(body)
      .map(function (field) {
        var messages = Array.isArray(body[field]) ? body[field] : [body[field]];
        var text = messages
          .map(function (message) {
            return typeof message === "string" ? message : JSON.stringify(message);
          })
          .join(" ");
        return field === "non_field_errors" || field === "detail" ? text : field + ": " + text;
      })
      .join(" · ");
  }

  function requestBody() {
    var method = hsMethod.value;
    var allowed = (hs.params || {})[method] || [];
    var params = {};
    hsForm.querySelectorAll("[data-param]").forEach(function (field) {
      var name = field.getAttribute("data-param");
      var input = field.querySelector("input, select");
      if (allowed.indexOf(name) < 0 || !input || input.value === "") {
        return;
      }
      if (input.type === "number") {
        params[name] = Number(input.value);
      } else if (input.getAttribute("data-kind") === "boolean") {
        params[name] = input.value === "true";
      } else {
        params[name] = input.value;
      }
    });
    var body = {
      region: hsRegionSelect.value,
      method: method,
      date_from: hsFrom.value,
      date_to: hsTo.value,
      params: params,
    };
    var family = hsForm.querySelector("[name=family]").value;
    if (family) {
      body.family = family;
    }
    if (hsDistrictSelect.value) {
      body.districts = [hsDistrictSelect.value];
    }
    return body;
  }

  function showProgress(run) {
    hsProgressBox.hidden = false;
    if (run.status === "running") {
      hsProgress.value = Number(run.progress) || 0;
      hsProgressText.textContent = format(hsLabels.running, {
        percent: Math.round(100 * (Number(run.progress) || 0)) + "\u00a0%",
      });
    } else {
      hsProgress.removeAttribute("value");
      hsProgressText.textContent = hsLabels.queued;
    }
    mapNode.setAttribute("data-hotspot-job", run.status);
  }

  function finishRun(run, reused) {
    hsSubmit.disabled = false;
    mapNode.setAttribute("data-hotspot-job", run.status);
    hsProgress.value = 1;
    if (run.status !== "succeeded") {
      hsProgressText.textContent = format(hsLabels.failed, { message: run.message || "" });
      hsProgressText.classList.add("is-error");
      return;
    }
    hsProgressText.classList.remove("is-error");
    hsProgressText.textContent = format(reused ? hsLabels.reused : hsLabels.succeeded, {
      id: run.id,
    });
    mapNode.setAttribute("data-hotspot-reused", reused ? "true" : "false");
    var listed = hsRunSelect.querySelector('option[value="' + String(Number(run.id)) + '"]');
    if (!listed) {
      hsRunSelect.insertBefore(hotspots.runOption(run), hsRunSelect.options[1] || null);
    }
    hsRunSelect.value = String(run.id);
    hotspots.showRun(run.id, true);
  }

  function follow(run) {
    if (run.finished) {
      finishRun(run);
      return;
    }
    showProgress(run);
    window.setTimeout(function () {
      getJSON(hotspots.runUrl(run.id, ""))
        .then(follow)
        .catch(function (error) {
          logError(error);
          hsProgressText.textContent = hsLabels.pollError;
          window.setTimeout(function () {
            follow(run);
          }, hs.pollMs || 1000);
        });
    }, hs.pollMs || 1000);
  }

  hsMethod.addEventListener("change", showMethodFields);
  hsDistrictSelect.addEventListener("change", showMethodFields);
  hsRegionSelect.addEventListener("change", fillRunDistricts);

  hsForm.addEventListener("submit", function (event) {
    event.preventDefault();
    formError("");
    if (!hsFrom.value || !hsTo.value) {
      formError(hsLabels.needDates);
      return;
    }
    var token = hsForm.querySelector("input[name=csrfmiddlewaretoken]");
    hsSubmit.disabled = true;
    hsProgressText.classList.remove("is-error");
    mapNode.setAttribute("data-hotspot-job", "starting");
    fetch(hs.runsUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": token ? token.value : "",
      },
      body: JSON.stringify(requestBody()),
    })
      .then(function (response) {
        return response.json().then(function (body) {
          return { ok: response.ok, body: body };
        });
      })
      .then(function (result) {
        if (!result.ok) {
          hsSubmit.disabled = false;
          mapNode.setAttribute("data-hotspot-job", "refused");
          formError(hsLabels.submitError + " " + errorText(result.body));
          return;
        }
        if (result.body.reused) {
          hsProgressBox.hidden = false;
          finishRun(result.body, true);
          return;
        }
        follow(result.body);
      })
      .catch(function (error) {
        logError(error);
        hsSubmit.disabled = false;
        formError(hsLabels.submitError);
      });
  });

  /* The regions to run an analysis in, and the fields for the method chosen. */
  function fillRegions(regions, regionNames) {
    regions.forEach(function (region) {
      var option = el("option", null, regionNames[region.code] || region.code);
      option.value = region.code;
      hsRegionSelect.appendChild(option);
    });
    fillRunDistricts();
    showMethodFields();
  }

  return { fillRegions: fillRegions, prefill: prefillForm };
}
