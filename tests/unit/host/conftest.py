"""Fixtures of the host's unit tests: settings for a fast host, and one trained bundle."""

from tests.support.host_fixtures import host_settings, tiny_result

__all__ = ["host_settings", "tiny_result"]
