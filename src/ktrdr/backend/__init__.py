"""ktrdr.backend."""
