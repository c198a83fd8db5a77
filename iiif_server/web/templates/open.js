// Opens the content state the page carries (data-* of #viewer) in Mirador: one window on the manifest at the
// canvas, its annotations (the names on a list) drawn and listed, the view fitted to the region with a margin
// around it, and the annotation whose target is that region selected once the annotations are loaded.
(function () {
  var el = document.getElementById("viewer");
  var manifest = el.getAttribute("data-manifest");
  var canvas = el.getAttribute("data-canvas") || undefined;
  var region = (el.getAttribute("data-region") || "").split(",").filter(Boolean).map(Number);
  var MARGIN = 1.6; // the region's size times this is shown
  var zoomed = region.length === 4;
  var settings = { manifestId: manifest, canvasId: canvas, highlightAllAnnotations: true,
                   sideBarOpen: zoomed, sideBarPanel: "annotations" };
  if (zoomed) {
    // Mirador applies this on the canvas's first tile (an earlier fitBounds would be undone by its goHome)
    var w = region[2] * MARGIN, h = region[3] * MARGIN;
    settings.initialViewerConfig = {
      bounds: [region[0] + region[2] / 2 - w / 2, region[1] + region[3] / 2 - h / 2, w, h] };
  }
  var mirador = Mirador.viewer({
    id: "viewer",
    windows: [settings],
    window: { allowClose: false, allowMaximize: false },
    workspaceControlPanel: { enabled: false },
    annotations: { filteredMotivations: ["oa:commenting", "oa:tagging", "commenting", "tagging", "identifying"] },
  });
  window.miradorInstance = mirador;
  if (!zoomed) { return; }
  var store = mirador.store;
  var actions = Mirador.actions || Mirador; // the UMD build exports its action creators at its top
  var fragment = "#xywh=" + region.join(",");

  // select the annotation on the region once its page is in the store (polled: it arrives after the manifest)
  function select() {
    var state = store.getState(), id = Object.keys(state.windows)[0];
    var pages = id && canvas && state.annotations[canvas];
    if (!pages) { return false; }
    var found = null;
    Object.values(pages).forEach(function (page) {
      ((page && page.json && page.json.items) || []).forEach(function (anno) {
        if (!found && anno.target === canvas + fragment) { found = anno.id; }
      });
    });
    if (found) { store.dispatch(actions.selectAnnotation(id, found)); }
    return Boolean(found);
  }

  var tries = 0;
  var timer = setInterval(function () {
    if (select() || ++tries > 300) { clearInterval(timer); }
  }, 100);
})();
