"""ktrdr.labels."""
