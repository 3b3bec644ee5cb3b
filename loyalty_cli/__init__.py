"""loyalty: a command-line loyalty programme for small shops, over one SQLite file."""

__version__ = "0.1.0"
