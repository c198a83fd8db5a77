// Progressive enhancement for the staff console: copy buttons, and an ingest run's progress shown live (polled
// every second while it runs). Pages work without it.
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-copy]");
  if (!button) return;
  var field = document.getElementById(button.getAttribute("data-copy"));
  if (!field) return;
  field.select();
  var done = function () { button.textContent = "Copied"; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
  } else {
    document.execCommand("copy");
    done();
  }
});

(function () {
  var run = document.getElementById("run");
  if (!run) return;
  var url = run.getAttribute("data-progress");
  var live = ["starting", "running"];
  function set(id, text) {
    var el = document.getElementById(id);
    if (el) el.textContent = text;
  }
  function show(p) {
    set("state", p.state + (p.silent ? " (no sign of life for a while)" : ""));
    set("done", p.done);
    set("failed", p.failed);
    set("left", p.left === null ? "(scanning)" : p.left);
    set("rate", p.rate === null ? "–" : p.rate);
    set("eta", p.seconds_left === null ? "–" : p.seconds_left + " s");
    set("message", p.message || "");
    var bar = document.getElementById("bar");
    if (bar && p.total) { bar.max = p.total; bar.value = p.done; }
    if (p.report) {
      var link = document.createElement("a");
      link.href = "/staff/ingest/" + encodeURIComponent(p.report);
      link.textContent = "The run's report";
      var where = document.getElementById("report");
      where.textContent = "";
      where.appendChild(link);
    }
    if (live.indexOf(p.state) < 0) {
      var stop = document.getElementById("stop");
      if (stop) stop.remove();
    }
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok || (r.headers.get("content-type") || "").indexOf("json") < 0) throw new Error("signed out");
      return r.json();
    }).then(function (p) {
      show(p);
      if (live.indexOf(p.state) >= 0) setTimeout(poll, 1000);
    }, function () {
      set("message", "The console session ended: sign in again to go on watching.");
    });
  }
  if (live.indexOf(document.getElementById("state").textContent.split(" ")[0]) >= 0) setTimeout(poll, 1000);
})();
