"""What a training host and the backend agree on when a host registers itself.

``PROTOCOL_VERSION`` is the registration protocol (``RegisterHost`` / ``HostHeartbeat``);
a backend refuses a host that speaks another one. Raise it when the meaning of those
messages changes in a way an older peer would misread.
"""

from __future__ import annotations

import re

PROTOCOL_VERSION = 1
HOST_ID_MAX_CHARS = 128
HOST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
MAX_HELD_SESSIONS = 1024  # sessions one RegisterHost / HostHeartbeat may list

__all__ = ["HOST_ID_MAX_CHARS", "HOST_ID_PATTERN", "MAX_HELD_SESSIONS", "PROTOCOL_VERSION"]
