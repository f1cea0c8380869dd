"""The package version, at the bottom of the house so that provenance and cache keys can name it."""

__version__ = "0.1.0"
