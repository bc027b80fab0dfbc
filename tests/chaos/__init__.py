"""The chaos soak (README "Chaos test"): ``make chaos`` or ``make chaos-short``, never
``make test``."""
