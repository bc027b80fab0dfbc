"""ktrdr.client."""
