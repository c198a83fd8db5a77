"""A IIIF Image and Presentation server for archives."""

__version__ = "0.1.0"
