"""ktrdr.models."""
