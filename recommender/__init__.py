"""Related stories for Bulgarian news websites."""

__version__ = "0.1.0"
