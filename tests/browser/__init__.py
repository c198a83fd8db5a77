"""End-to-end tests in real IIIF viewers: a package, so that its modules (browser.test_console ...) do not clash
with tests/console/test_console.py and tests/search/test_search.py, and `browser`'s package scope closes Chromium
(and Playwright's event loop) once these tests are done. Under pytest-xdist they run on one worker, together."""
