"""Fuzzy sets: membership functions (with shoulders) and the fuzzification of indicators."""

from ktrdr.fuzzy.fuzzify import fuzzify
from ktrdr.fuzzy.membership import FUZZY_SET_TYPES, check_fuzzy_params, membership

__all__ = ["FUZZY_SET_TYPES", "check_fuzzy_params", "fuzzify", "membership"]
