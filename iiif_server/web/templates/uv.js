// Universal Viewer reads the content state from the address itself (#?iiif-content=...: the manifest, the canvas
// and the region it zooms to). UV 4 does not show the annotations a manifest's canvases carry, so this page
// hands it the names on the opened canvas (the line opened first, which UV zooms to), and a click on a name
// opens that person's page.
(function () {
  var adapter = new UV.IIIFURLAdapter(true);
  var data = adapter.getInitialData({ embedded: true });
  var people = {};
  function start(annotations) {
    if (annotations.length) { data.annotations = annotations; }
    window.uvInstance = UV.init("uv", data);
    adapter.bindTo(window.uvInstance);
  }
  function names(manifest) {
    var found = [];
    var canvas = (manifest.items || []).filter(function (c) { return c.id === data.canvasId; })[0];
    ((canvas && canvas.annotations) || []).forEach(function (page) {
      (page.items || []).forEach(function (anno) {
        if (anno.motivation !== "identifying" || typeof anno.target !== "string") { return; }
        var person = [].concat(anno.body || []).filter(function (b) { return b.id && b.label; })[0];
        if (!person) { return; }
        var name = (person.label.none || person.label[Object.keys(person.label)[0]] || [""])[0];
        people[name] = person.id;
        var item = { id: anno.id, type: "Annotation", motivation: "identifying", target: anno.target,
                     bodyValue: name };
        if (data.xywh && anno.target === data.canvasId + "#xywh=" + data.xywh) { found.unshift(item); }
        else { found.push(item); }
      });
    });
    return found;
  }
  // A press and release in place on a name opens the person. OpenSeadragon captures the pointer, so the click
  // lands on its canvas, not the name: the name is found under the pointer, in the capture phase.
  var pressed = null;
  window.addEventListener("pointerdown", function (event) { pressed = [event.clientX, event.clientY]; }, true);
  window.addEventListener("pointerup", function (event) {
    var at = pressed;
    pressed = null;
    if (!at || Math.abs(event.clientX - at[0]) + Math.abs(event.clientY - at[1]) > 6) { return; }
    var rect = document.elementsFromPoint(event.clientX, event.clientY).filter(function (e) {
      return e.classList.contains("annotationRect") && people[e.title];
    })[0];
    if (rect) { window.location.href = people[rect.title]; }
  }, true);
  if (!data.iiifManifestId || !data.canvasId) { start([]); return; }
  fetch(data.iiifManifestId, { credentials: "include" })
    .then(function (r) { return r.ok ? r.json() : {}; })
    .then(function (manifest) { start(names(manifest)); })
    .catch(function () { start([]); });
})();
