"""ktrdr.fuzzy."""
