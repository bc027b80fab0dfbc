"""Where a service on this machine keeps its token files, found by its port.

A backend or host listening on a loopback address writes one small record,
``RUNTIME_DIR/port-PORT.json``: which service, its process id, and the absolute paths of the
token files a peer on this machine should read (the backend: ``admin`` and ``host``; the host:
``auth``). A client or peer that reaches ``127.0.0.1:PORT`` without a configured token reads
the record of that port, so it follows the data or spool directory the service actually uses
(``--data-dir /elsewhere`` included) and never picks up a stale token file that happens to lie
in its own working directory. A record whose process is gone is ignored.

``RUNTIME_DIR`` is ``$KTRDR_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/ktrdr``, else
``~/.cache/ktrdr/run`` (mode 0700; records are mode 0600 and hold paths, never tokens).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ktrdr.security.tls import is_loopback_address, split_host

logger = logging.getLogger(__name__)

RUNTIME_DIR_ENV = "KTRDR_RUNTIME_DIR"


def runtime_dir() -> Path:
    if os.environ.get(RUNTIME_DIR_ENV):
        return Path(os.environ[RUNTIME_DIR_ENV]).expanduser().absolute()
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "ktrdr"
    return Path.home() / ".cache" / "ktrdr" / "run"


def _port(address: str) -> int | None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return int(port)


def _record_file(port: int) -> Path:
    return runtime_dir() / f"port-{port}.json"


def announce(address: str, service: str, token_files: dict[str, Path]) -> Path | None:
    """Record this process's token files for peers of ``address`` (loopback only); the
    record's path, or None when there is nothing to announce or it cannot be written."""
    port = _port(address)
    if port is None or not token_files or not _is_local(address):
        return None
    record = {
        "service": service,
        "pid": os.getpid(),
        "token_files": {k: str(Path(v).absolute()) for k, v in token_files.items()},
    }
    path = _record_file(port)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.replace(tmp, path)
    except OSError as exc:
        logger.warning("cannot record where this %s's tokens are (%s): %s", service, path, exc)
        return None
    logger.info("%s on port %d: token files recorded in %s for clients here", service, port, path)
    return path


def withdraw(address: str) -> None:
    """Remove this process's record of ``address`` (a later service's record stays)."""
    port = _port(address)
    if port is None:
        return
    path = _record_file(port)
    if _read(path).get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def announced_token_file(address: str, service: str, kind: str) -> Path | None:
    """The token file of kind ``kind`` that the ``service`` serving on ``address`` (on this
    machine) announced; None without a live record."""
    port = _port(address)
    if port is None or not is_loopback_address(address):
        return None
    record = _read(_record_file(port))
    if record.get("service") != service or not _alive(record.get("pid")):
        return None
    value = (record.get("token_files") or {}).get(kind)
    return Path(value) if isinstance(value, str) and value else None


def _is_local(address: str) -> bool:
    """Loopback, or a wildcard address (which loopback clients reach too)."""
    return is_loopback_address(address) or split_host(address) in ("0.0.0.0", "::", "[::]", "")


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


__all__ = ["RUNTIME_DIR_ENV", "announce", "announced_token_file", "runtime_dir", "withdraw"]
