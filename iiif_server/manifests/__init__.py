"""Presentation side: catalogue, IIIF Presentation 3.0 and Change Discovery documents."""
