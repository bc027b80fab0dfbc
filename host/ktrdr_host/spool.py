"""The disk spool: finished models wait here until the backend acknowledges them.

Each entry is two files named after the session: ``<key>.tar`` (the bundle archive) and
``<key>.json`` (a small sidecar: session, strategy, target, SHA-256, size, metrics, bundle
summary). Both are written to a temporary name, flushed to disk and renamed into place, the
archive first: the sidecar is the commit marker, so an entry either exists whole or not at all.
A host that starts again lists the sidecars and resends every entry.

Entries the backend refused for good are *parked* in ``failed/`` with the reason (never
deleted: a model is never lost). ``ktrdr host spool list`` shows waiting and parked entries;
``ktrdr host spool resend SESSION`` moves a parked one back, and a running host picks it up
at its next spool scan (``KTRDR_HOST_SPOOL_SCAN_INTERVAL_S``), a stopped one at its start.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ktrdr.security.file_modes import private_directory
from ktrdr.storage.bundle import ModelBundle
from ktrdr.transfer import sha256_file

logger = logging.getLogger(__name__)

SPOOL_FORMAT = 1
TEMP_PREFIX = ".tmp-"
FAILED_DIR = "failed"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def entry_key(session_id: str) -> str:
    """A file-name-safe, unique name for a session's entry (readable prefix + short hash)."""
    digest = hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:10]
    readable = _UNSAFE.sub("_", session_id)[:80].lstrip(".") or "session"
    return f"{readable}-{digest}"


@dataclass(frozen=True)
class SpoolEntry:
    """What the sidecar records; ``archive`` is where the bundle's bytes are."""

    session_id: str
    strategy_name: str
    results_target: str
    sha256: str
    size_bytes: int
    device: str
    duration_s: float
    metrics: dict[str, float]
    bundle: dict[str, Any]  # BundleSummary fields, JSON-friendly
    # The operation's upload credential from StartTraining, sent back with SubmitResults.
    # Kept in the sidecar (mode 0600) so a restarted host can still deliver.
    upload_credential: str = ""
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    archive: Path = Path()

    @property
    def key(self) -> str:
        return entry_key(self.session_id)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("archive")
        data["spool_format"] = SPOOL_FORMAT
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], archive: Path) -> SpoolEntry:
        return cls(
            session_id=str(data["session_id"]),
            strategy_name=str(data["strategy_name"]),
            results_target=str(data["results_target"]),
            sha256=str(data["sha256"]),
            size_bytes=int(data["size_bytes"]),
            device=str(data.get("device", "")),
            duration_s=float(data.get("duration_s", 0.0)),
            metrics={str(k): float(v) for k, v in dict(data.get("metrics", {})).items()},
            bundle=dict(data.get("bundle", {})),
            upload_credential=str(data.get("upload_credential", "")),
            created_at=str(data.get("created_at", "")),
            archive=archive,
        )


class Spool:
    """A directory of bundles waiting for delivery. Blocking I/O: call from a worker thread."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.failed_directory = self.directory / FAILED_DIR
        private_directory(self.failed_directory.parent)  # sidecars hold credentials
        self.failed_directory.mkdir(exist_ok=True, mode=0o700)

    # -- writing ---------------------------------------------------------------------------
    def put(
        self,
        bundle: ModelBundle,
        *,
        session_id: str,
        results_target: str,
        device: str,
        duration_s: float,
        metrics: dict[str, float],
        summary: dict[str, Any],
        upload_credential: str = "",
    ) -> SpoolEntry:
        """Write ``bundle`` and its sidecar atomically; returns the committed entry."""
        key = entry_key(session_id)
        archive = self.directory / f"{key}.tar"
        tmp = self._temp_path(key, ".tar")
        try:
            bundle.to_archive(tmp)  # flushed and fsynced
            digest = sha256_file(tmp)
            size = tmp.stat().st_size
            os.replace(tmp, archive)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        entry = SpoolEntry(
            session_id=session_id,
            strategy_name=bundle.strategy_name,
            results_target=results_target,
            sha256=digest,
            size_bytes=size,
            device=device,
            duration_s=duration_s,
            metrics=metrics,
            bundle=summary,
            upload_credential=upload_credential,
            archive=archive,
        )
        self._write_json(self.directory / f"{key}.json", entry.to_json())
        self._sync_directory(self.directory)
        logger.info(
            "spooled the model of session %s: %s (%d bytes, sha256 %s)",
            session_id,
            archive,
            size,
            digest[:12],
        )
        return entry

    # -- reading ---------------------------------------------------------------------------
    def entries(self, *, cleanup: bool = True) -> list[SpoolEntry]:
        """Every committed entry, oldest first. Cleans up leftovers of interrupted writes
        (at start only: ``cleanup=False`` while the host runs, when writes may be under way,
        and then an incomplete entry is skipped, not moved)."""
        if not cleanup:
            return self._committed()
        self._remove_leftovers()
        found: list[SpoolEntry] = []
        for sidecar in sorted(self.directory.glob("*.json")):
            archive = sidecar.with_suffix(".tar")
            try:
                entry = SpoolEntry.from_json(json.loads(sidecar.read_text("utf-8")), archive)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.error("spool sidecar %s is unreadable (%s); moved to failed/", sidecar, exc)
                self._move_to_failed(sidecar, archive)
                continue
            if not archive.is_file():
                logger.error("spool entry %s has no archive %s; moved to failed/", sidecar, archive)
                self._move_to_failed(sidecar, archive)
                continue
            found.append(entry)
        found.sort(key=lambda e: e.created_at)
        return found

    def _committed(self) -> list[SpoolEntry]:
        found: list[SpoolEntry] = []
        for sidecar in sorted(self.directory.glob("*.json")):
            archive = sidecar.with_suffix(".tar")
            try:
                data = json.loads(sidecar.read_text("utf-8"))
                entry = SpoolEntry.from_json(data, archive)
            except (OSError, ValueError, KeyError, TypeError):
                continue  # being replaced or removed right now; the next scan sees it whole
            if archive.is_file():
                found.append(entry)
        found.sort(key=lambda e: e.created_at)
        return found

    def parked(self) -> list[tuple[SpoolEntry, str, str]]:
        """Entries in ``failed/``: (entry, why it was parked, when), oldest first."""
        found: list[tuple[SpoolEntry, str, str]] = []
        for sidecar in sorted(self.failed_directory.glob("*.json")):
            archive = sidecar.with_suffix(".tar")
            try:
                data = json.loads(sidecar.read_text("utf-8"))
                entry = SpoolEntry.from_json(data, archive)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.error("parked sidecar %s is unreadable: %s", sidecar, exc)
                continue
            why = str(data.get("failed_reason", "unknown"))
            if not archive.is_file():
                why += " (its archive is missing)"
            found.append((entry, why, str(data.get("failed_at", ""))))
        found.sort(key=lambda item: item[0].created_at)
        return found

    def resend(self, session_id: str) -> SpoolEntry:
        """Move a parked entry back into the spool (archive first, sidecar last: the commit).
        Raises ``LookupError`` when no entry of ``session_id`` is parked."""
        key = entry_key(session_id)
        sidecar = self.failed_directory / f"{key}.json"
        archive = self.failed_directory / f"{key}.tar"
        if not sidecar.is_file() or not archive.is_file():
            raise LookupError(f"no parked model of session {session_id!r} in {FAILED_DIR}/")
        data = json.loads(sidecar.read_text("utf-8"))
        entry = SpoolEntry.from_json(data, self.directory / archive.name)
        os.replace(archive, entry.archive)
        self._write_json(self.directory / sidecar.name, entry.to_json())
        self._sync_directory(self.directory)
        sidecar.unlink()
        logger.info("the parked model of session %s is back in the spool", session_id)
        return entry

    def verify(self, entry: SpoolEntry) -> bool:
        """True when the archive on disk still has the hash recorded when it was spooled."""
        try:
            return sha256_file(entry.archive) == entry.sha256
        except OSError:
            return False

    # -- removing --------------------------------------------------------------------------
    def delete(self, entry: SpoolEntry) -> None:
        """Forget a delivered entry: sidecar first (the commit marker), then the archive."""
        (self.directory / f"{entry.key}.json").unlink(missing_ok=True)
        entry.archive.unlink(missing_ok=True)
        logger.info("removed the delivered model of session %s from the spool", entry.session_id)

    def mark_failed(self, entry: SpoolEntry, reason: str) -> Path:
        """Move a refused entry to ``failed/`` with the reason; returns the new sidecar path."""
        sidecar = self.directory / f"{entry.key}.json"
        data = entry.to_json() | {"failed_reason": reason, "failed_at": _now()}
        target = self.failed_directory / sidecar.name
        self._write_json(target, data)
        if entry.archive.exists():
            os.replace(entry.archive, self.failed_directory / entry.archive.name)
        sidecar.unlink(missing_ok=True)
        logger.warning(
            "delivery of session %s failed for good (%s); the model is kept in %s",
            entry.session_id,
            reason,
            self.failed_directory,
        )
        return target

    # -- internals -------------------------------------------------------------------------
    def _temp_path(self, key: str, suffix: str) -> Path:
        fd, name = tempfile.mkstemp(
            prefix=f"{TEMP_PREFIX}{key}-", suffix=suffix, dir=self.directory
        )
        os.close(fd)
        return Path(name)

    def _write_json(self, path: Path, data: dict[str, Any]) -> None:
        tmp = self._temp_path(path.stem, ".json")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds a secret
            with open(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _remove_leftovers(self) -> None:
        for tmp in self.directory.glob(f"{TEMP_PREFIX}*"):
            logger.warning("removing %s, left by an interrupted spool write", tmp)
            tmp.unlink(missing_ok=True)
        for archive in self.directory.glob("*.tar"):
            if not archive.with_suffix(".json").exists():
                # Written, but the host stopped before the sidecar committed the entry: the
                # session never reported COMPLETED, so nobody waits for this model.
                logger.warning("removing %s: its sidecar was never written", archive)
                archive.unlink(missing_ok=True)

    def _move_to_failed(self, sidecar: Path, archive: Path) -> None:
        for path in (sidecar, archive):
            if path.exists():
                os.replace(path, self.failed_directory / path.name)

    @staticmethod
    def _sync_directory(directory: Path) -> None:
        with contextlib.suppress(OSError):  # not supported everywhere; best effort
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _now() -> str:
    return datetime.now(UTC).isoformat()


__all__ = ["Spool", "SpoolEntry", "entry_key"]
