"""ltrec: see, model and fix the under-exposure of long-tail products."""

__version__ = "0.1.0"
