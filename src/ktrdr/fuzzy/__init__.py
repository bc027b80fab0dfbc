"""Fuzzy sets: membership functions (with shoulders) and the fuzzification of indicators.

Importing it loads neither numpy nor pandas (the services check strategies' sets with it);
they load when memberships are computed.
"""

from ktrdr.fuzzy.fuzzify import fuzzify, fuzzify_into
from ktrdr.fuzzy.membership import FUZZY_SET_TYPES, check_fuzzy_params, membership

__all__ = ["FUZZY_SET_TYPES", "check_fuzzy_params", "fuzzify", "fuzzify_into", "membership"]
