"""runner: run PEP 723 scripts in cached, immutable, content-addressed environments."""

# Kept import-free: the warm path imports this package before anything else.
__version__ = "0.1.0"
