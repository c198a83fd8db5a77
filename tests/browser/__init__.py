"""End-to-end tests in real IIIF viewers (a package, so that its conftest does not clash with tests/conftest.py)."""
