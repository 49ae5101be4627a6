/* Live progress of a background job (an import batch, a hotspot run) on its page.
 *
 * The page provides, as json_script elements:
 *   #progress-config  {url, intervalMs, bar, text, badge}: the JSON endpoint to poll and
 *                     the ids of the <progress>, its text and the status badge;
 *   #progress-labels  {queued, running, runningPercent, finished, pollError}, translated;
 *                     "%(percent)s" and "%(seconds)s" are filled in here;
 *   #progress-initial (optional) the endpoint's payload when the page was rendered.
 * The endpoint answers {status, status_label, progress (0-1), finished, elapsed_s?}; the
 * page reloads once the job is finished. */
import { format, getJSON, readJSON } from "./maps/common.js";

var config = readJSON("progress-config");
var labels = readJSON("progress-labels");
var initial = document.getElementById("progress-initial");
var bar = document.getElementById(config.bar);
var text = document.getElementById(config.text);
var badge = document.getElementById(config.badge);

function show(data) {
  badge.textContent = data.status_label;
  badge.className = "status status-" + data.status;
  badge.setAttribute("data-status", data.status);
  if (data.finished) {
    bar.value = 1;
    text.textContent = labels.finished;
    return;
  }
  var percent = Math.round(100 * data.progress);
  if (data.status === "running" && percent > 0) {
    bar.value = data.progress;
    text.textContent = format(labels.runningPercent, {percent: percent + "\u00a0%", seconds: data.elapsed_s});
  } else {
    bar.removeAttribute("value");
    text.textContent = data.status === "queued"
      ? labels.queued
      : format(labels.running, {seconds: data.elapsed_s});
  }
}

function poll() {
  getJSON(config.url)
    .then(function (data) {
      show(data);
      if (data.finished) {
        window.location.reload();
      } else {
        window.setTimeout(poll, config.intervalMs);
      }
    })
    .catch(function () {
      text.textContent = labels.pollError;
      window.setTimeout(poll, config.intervalMs);
    });
}

if (initial) {
  show(JSON.parse(initial.textContent));
} else {
  text.textContent = labels.queued;
}
window.setTimeout(poll, config.intervalMs);
