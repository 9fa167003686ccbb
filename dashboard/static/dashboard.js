// p2pgrid dashboard: on each "interval" event from /events, fetch the page
// again and swap its <main> in, without reloading. EventSource reconnects
// by itself; the server then sends one event if the page missed any.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var updates = 0, busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("main"), main = document.getElementById("main");
        if (fresh && main) { main.innerHTML = fresh.innerHTML; }
        updates++;
        document.body.setAttribute("data-updates", String(updates));
      })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  if (!window.EventSource) { live.textContent = "no live updates in this browser"; return; }
  var es = new EventSource("/events");
  es.onopen = function () { live.textContent = "live"; live.className = "live on"; };
  es.onerror = function () { live.textContent = "reconnecting…"; live.className = "live"; };
  es.addEventListener("interval", function (e) {
    live.textContent = "live · last " + (e.data || "update");
    refresh();
  });
})();
