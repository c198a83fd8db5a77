// Opens the content state the page carries (data-* of #viewer) in Mirador: one window on the manifest at the
// canvas, its annotations (the names on a list) drawn and listed, and once the canvas shows, the viewport on
// the region with a margin around it. The annotation whose target is that region is selected.
(function () {
  var el = document.getElementById("viewer");
  var manifest = el.getAttribute("data-manifest");
  var canvas = el.getAttribute("data-canvas") || undefined;
  var region = (el.getAttribute("data-region") || "").split(",").filter(Boolean).map(Number);
  var MARGIN = 1.6; // the region's size times this is shown
  var mirador = Mirador.viewer({
    id: "viewer",
    windows: [{ manifestId: manifest, canvasId: canvas, highlightAllAnnotations: true,
                sideBarOpen: region.length === 4, sideBarPanel: "annotations" }],
    window: { allowClose: false, allowMaximize: false },
    workspaceControlPanel: { enabled: false },
    annotations: { filteredMotivations: ["oa:commenting", "oa:tagging", "commenting", "tagging", "identifying"] },
  });
  window.miradorInstance = mirador;
  if (region.length !== 4) { return; }
  var store = mirador.store;
  var zoomed = false, selected = false;
  var fragment = "#xywh=" + region.join(",");
  var unsubscribe = store.subscribe(function () {
    var state = store.getState();
    var windowId = Object.keys(state.windows)[0];
    if (!windowId) { return; }
    var view = state.viewers[windowId];
    if (!zoomed && view && (!canvas || state.windows[windowId].canvasId === canvas)) {
      var box = document.querySelector(".openseadragon-canvas");
      if (!box) { return; }
      var rect = box.getBoundingClientRect();
      var width = Math.max(region[2] * MARGIN, region[3] * MARGIN * rect.width / Math.max(rect.height, 1));
      zoomed = true;
      store.dispatch(Mirador.actions.updateViewport(windowId, {
        x: region[0] + region[2] / 2, y: region[1] + region[3] / 2, zoom: 1 / width }));
    }
    if (!selected && canvas && state.annotations[canvas]) {
      Object.values(state.annotations[canvas]).forEach(function (page) {
        ((page && page.json && page.json.items) || []).forEach(function (anno) {
          if (!selected && typeof anno.target === "string" && anno.target === canvas + fragment) {
            selected = true;
            store.dispatch(Mirador.actions.selectAnnotation(windowId, anno.id));
          }
        });
      });
    }
    if (zoomed && selected) { unsubscribe(); }
  });
})();
