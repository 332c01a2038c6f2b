"""1C loyalty integration gateway."""

__version__ = "0.1.0"
