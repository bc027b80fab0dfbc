"""ktrdr.config."""
