"""harness: evaluate trained classifiers on everything that decides whether they can ship."""

__version__ = "0.1.0"
