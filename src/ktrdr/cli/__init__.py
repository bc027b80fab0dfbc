"""ktrdr.cli."""
