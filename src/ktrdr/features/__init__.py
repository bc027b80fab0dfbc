"""ktrdr.features."""
