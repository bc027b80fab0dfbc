"""ktrdr.indicators."""
