"""KTRDR training: neuro-fuzzy strategy training library, training host and backend."""

__version__ = "0.1.0"

__all__ = ["__version__"]
