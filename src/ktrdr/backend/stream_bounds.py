"""The backend's bounds on long server streams (see ``ktrdr.security.stream_limits``)."""

from __future__ import annotations

from collections.abc import Callable

from ktrdr.backend.models.service import MAX_CONCURRENT_DOWNLOADS
from ktrdr.backend.settings import BackendSettings
from ktrdr.security.interceptor import Identity
from ktrdr.security.stream_limits import StreamCap, StreamGuard

_SERVICE = "/ktrdr.training.v1.Backend/"


def backend_stream_guard(
    settings: BackendSettings, resolve: Callable[[str], Identity | None] | None
) -> StreamGuard:
    """Watches and downloads capped in all and per caller, ended when the client stops
    reading or its token is revoked."""
    return StreamGuard(
        {
            _SERVICE + "WatchOperation": "watch",
            _SERVICE + "WatchSweep": "watch",
            _SERVICE + "DownloadModel": "download",
        },
        {
            "watch": StreamCap(settings.max_watch_streams, settings.max_watch_streams_per_user),
            "download": StreamCap(MAX_CONCURRENT_DOWNLOADS, settings.max_download_streams_per_user),
        },
        send_timeout_s=settings.stream_send_timeout_s,
        resolve=resolve,
    )


__all__ = ["backend_stream_guard"]
