"""Full-text search of page text (IIIF Content Search 1.0 and 2.0)."""
