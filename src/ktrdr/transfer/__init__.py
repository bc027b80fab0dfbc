"""ktrdr.transfer."""
