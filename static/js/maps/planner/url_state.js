/*
 * Planner map: the view lives in the address (#zoom/lat/lon), so a view can be reloaded
 * or shared, and the language switch comes back to it.
 */

export function viewFromHash() {
  var parts = window.location.hash.replace(/^#/, "").split("/");
  if (parts.length !== 3) {
    return null;
  }
  var zoom = Number(parts[0]);
  var lat = Number(parts[1]);
  var lon = Number(parts[2]);
  if (![zoom, lat, lon].every(isFinite) || Math.abs(lat) > 90 || Math.abs(lon) > 180) {
    return null;
  }
  return { zoom: Math.max(2, Math.min(19, zoom)), center: [lat, lon] };
}

export function writeHash(map) {
  var center = map.getCenter();
  var hash = "#" + map.getZoom() + "/" + center.lat.toFixed(5) + "/" + center.lng.toFixed(5);
  if (window.location.hash !== hash && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", hash);
  }
}

/* The language switch comes back to this view (not to the regions' extent), and a view
   typed or pasted into the address moves the map. */
export function followHash(map) {
  var languageForm = document.querySelector("form.lang-switch");
  if (languageForm) {
    languageForm.addEventListener("submit", function () {
      var next = languageForm.querySelector("input[name=next]");
      if (next && window.location.hash) {
        next.value = next.value.split("#")[0] + window.location.hash;
      }
    });
  }

  window.addEventListener("hashchange", function () {
    var view = viewFromHash();
    if (view) {
      map.setView(view.center, view.zoom);
    }
  });
}
