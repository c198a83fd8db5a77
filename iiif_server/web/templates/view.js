// Starts the viewer named in the page (data-* attributes of #viewer): one window on the collection's
// first document, and the collection in the viewer's catalogue to open its other documents.
(function () {
  var el = document.getElementById("viewer");
  var manifest = el.getAttribute("data-manifest");
  var collection = el.getAttribute("data-collection");
  var catalog = [{ manifestId: collection }];
  if (manifest) { catalog.unshift({ manifestId: manifest }); }
  window.miradorInstance = Mirador.viewer({
    id: "viewer",
    windows: [{ manifestId: manifest || collection }],
    catalog: catalog,
    window: { allowClose: false, allowMaximize: false },
  });
})();
