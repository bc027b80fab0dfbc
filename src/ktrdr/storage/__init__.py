"""ktrdr.storage."""
