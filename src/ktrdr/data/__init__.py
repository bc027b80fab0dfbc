"""ktrdr.data."""
