"""How the backend tells a delivering host whether to try again, in trailing metadata.

A ``SubmitResults`` refusal is either *final* (a definitive answer about the operation or its
bundle: unknown operation, not this host's credential, already delivered, no longer waiting,
an invalid bundle) or not. Only the results intake marks an answer final, with
``ktrdr-refusal: final``; refusals from anything in front of it (the token interceptor, a
proxy, a server that is not a backend) carry no mark, so the host retries them: a token that
is fixed or rotated later still delivers. A refusal that is not final may carry
``retry-after-ms``: how long the host should wait at least (the backend's upload cap).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

REFUSAL_KEY = "ktrdr-refusal"
FINAL = "final"
RETRY_AFTER_KEY = "retry-after-ms"
# A host never waits longer than this for one hint, whatever a backend says.
MAX_RETRY_AFTER_S = 60.0


def refusal_metadata(
    *, final: bool, retry_after_s: float | None = None
) -> tuple[tuple[str, str], ...]:
    """The trailing metadata of a refusal."""
    items: list[tuple[str, str]] = []
    if final:
        items.append((REFUSAL_KEY, FINAL))
    if retry_after_s is not None and not final:
        items.append((RETRY_AFTER_KEY, str(max(int(retry_after_s * 1000), 0))))
    return tuple(items)


def read_refusal(metadata: Iterable[tuple[str, Any]] | None) -> tuple[bool, float | None]:
    """(final, retry-after seconds or None) from a refusal's trailing metadata."""
    final = False
    retry_after: float | None = None
    for key, value in metadata or ():
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
        if key.lower() == REFUSAL_KEY and text.strip() == FINAL:
            final = True
        elif key.lower() == RETRY_AFTER_KEY:
            try:
                millis = int(text.strip())
            except ValueError:
                continue
            retry_after = min(max(millis, 0) / 1000.0, MAX_RETRY_AFTER_S)
    return final, None if final else retry_after


__all__ = [
    "FINAL",
    "MAX_RETRY_AFTER_S",
    "REFUSAL_KEY",
    "RETRY_AFTER_KEY",
    "read_refusal",
    "refusal_metadata",
]
