"""Feature construction from fuzzy memberships."""

from ktrdr.features.pipeline import (
    PRICE_CONTEXT_FEATURES,
    SymbolFeatures,
    assemble_features,
    build_symbol_features,
    compute_indicators,
    compute_memberships,
    price_context,
)

__all__ = [
    "PRICE_CONTEXT_FEATURES",
    "SymbolFeatures",
    "assemble_features",
    "build_symbol_features",
    "compute_indicators",
    "compute_memberships",
    "price_context",
]
