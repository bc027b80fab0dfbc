"""``ModelCatalog``: stored models as the model RPCs see them (registry rows + store files).

References handed out are store-relative (``strategy/dir``), never server paths. Deleting a
version renames its directory into ``models/.trash/`` inside the registry transaction, then
removes it: the store never shows a half-deleted directory, and a failed rename unregisters
nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from ktrdr.backend.conversions import store_relative, us_to_timestamp
from ktrdr.backend.errors import RequestError
from ktrdr.backend.models import listing
from ktrdr.backend.models.registry import ModelRegistry, ModelRow, check_alias, invalid
from ktrdr.backend.store import Store
from ktrdr.errors import StorageError
from ktrdr.storage.bundle import BUNDLE_FILES, METADATA_FILE
from ktrdr.storage.model_storage import check_strategy_name, locate_model
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2

logger = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 500
MAX_METRIC_CHARS = 200
TRASH_DIR = ".trash"
ARCHIVE_PREFIX = ".download-"


def not_found(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.NOT_FOUND, message)


def strategy_field(name: str, field_name: str = "strategy_name") -> str:
    if not name:
        raise invalid(f"{field_name}: required")
    try:
        return check_strategy_name(name)
    except Exception as exc:
        raise invalid(f"{field_name}: {exc}") from None


class ModelCatalog:
    """Finds, describes, lists, deletes and archives stored models."""

    def __init__(self, store: Store, models_dir: Path, work_dir: Path) -> None:
        self.registry = ModelRegistry(store)
        self.root = Path(models_dir)
        self.work_dir = Path(work_dir)
        self._clean_trash()

    def _clean_trash(self) -> None:
        """What a crash left: deleted versions not yet removed, archives of downloads."""
        trash = self.root / TRASH_DIR
        if trash.is_dir():
            for child in trash.iterdir():
                shutil.rmtree(child, ignore_errors=True)
        if self.work_dir.is_dir():
            for leftover in self.work_dir.glob(f"{ARCHIVE_PREFIX}*.tar"):
                leftover.unlink(missing_ok=True)

    # -- finding ---------------------------------------------------------------------------
    def resolve(self, selector: pb.ModelSelector) -> ModelRow:
        strategy = strategy_field(selector.strategy_name, "model.strategy_name")
        if selector.version < 0:
            raise invalid("model.version: must be >= 0")
        if selector.version and selector.alias:
            raise invalid("model: give a version or an alias, not both")
        rows = self.registry.rows(strategy)
        if not rows:
            raise not_found(
                f"strategy {strategy!r} has no stored models ('ktrdr models list' shows them)"
            )
        if selector.alias:
            check_alias(selector.alias, "model.alias")
            version = self.registry.alias_version(strategy, selector.alias)
            if version is None:
                names = sorted({a for r in rows for a in r.aliases})
                raise not_found(
                    f"strategy {strategy!r} has no alias {selector.alias!r}"
                    + (f"; its aliases: {', '.join(names)}" if names else "; it has none")
                )
        else:
            version = selector.version or rows[-1].model.version
        for row in rows:
            if row.model.version == version:
                return row
        known = ", ".join(str(r.model.version) for r in rows)
        raise not_found(f"strategy {strategy!r} has no version {version}; stored: {known}")

    def row(self, strategy_name: str, version: int) -> ModelRow:
        if version <= 0:
            raise invalid("version: required (a stored version, 1 or more)")
        return self.resolve(pb.ModelSelector(strategy_name=strategy_name, version=version))

    def directory(self, row: ModelRow) -> Path:
        """The version's directory, checked to lie inside the store."""
        try:
            path = locate_model(self.root, row.model.path)
        except StorageError:
            logger.error(
                "model %s v%d: recorded path %r names no stored version",
                row.model.strategy_name,
                row.model.version,
                row.model.path,
            )
            raise RequestError(
                grpc.StatusCode.DATA_LOSS,
                f"{row.model.strategy_name} v{row.model.version}: its recorded location is "
                "damaged (the backend's log has the details)",
            ) from None
        root = self.root.resolve()
        resolved = path.resolve()
        if root not in resolved.parents:
            raise RequestError(
                grpc.StatusCode.INTERNAL, "a registered model lies outside the model store"
            )
        return resolved

    # -- describing ------------------------------------------------------------------------
    def version_proto(self, row: ModelRow) -> pb.ModelVersion:
        model = row.model
        lineage = pb.ModelLineage(
            operation_id=model.operation_id,
            mode=row.mode,  # type: ignore[arg-type]
            host_address=row.host_address,
            owner=row.owner,
        )
        if row.result:
            result = common_pb2.ResultSummary.FromString(row.result)
            lineage.device = result.device
            lineage.duration_s = result.duration_s
        if row.overrides:
            overrides = common_pb2.TrainingOverrides.FromString(row.overrides)
            if overrides.HasField("seed"):
                lineage.seed = overrides.seed
        return pb.ModelVersion(
            version=model.version,
            created_time=us_to_timestamp(model.created_us),
            test_metrics=model.test_metrics,
            path=store_relative(model.path),
            operation_id=model.operation_id,
            aliases=row.aliases,
            tags=row.tags,
            lineage=lineage,
            sha256=model.sha256,
            strategy_name=model.strategy_name,
        )

    def details(self, row: ModelRow) -> pb.ModelDetails:
        version = self.version_proto(row)
        details = pb.ModelDetails(version=version)
        directory = self.directory(row)
        try:
            meta: dict[str, Any] = json.loads((directory / METADATA_FILE).read_text())
            details.size_bytes = sum((directory / n).stat().st_size for n in BUNDLE_FILES)
        except (OSError, ValueError):
            logger.exception("model %s v%d: unreadable", row.model.strategy_name, row.model.version)
            raise RequestError(
                grpc.StatusCode.DATA_LOSS,
                f"{row.model.strategy_name} v{row.model.version}: the stored files cannot be "
                "read (deleted meanwhile, or damaged; the backend's log has the details)",
            ) from None
        details.symbols.extend(str(s) for s in meta.get("symbols", []))
        details.timeframes.extend(str(t) for t in meta.get("timeframes", []))
        model_meta = meta.get("model") or {}
        details.model_type = str(model_meta.get("type", ""))
        details.feature_count = len(meta.get("feature_names", []))
        details.ktrdr_version = str((meta.get("versions") or {}).get("ktrdr", ""))
        metrics = meta.get("metrics") or {}
        summary = metrics.get("summary") if isinstance(metrics, dict) else None
        training = metrics.get("training") if isinstance(metrics, dict) else None
        for key, value in {**_numbers(training), **_numbers(summary)}.items():
            details.metrics[key] = value
        for i, epoch in enumerate(meta.get("history", []), start=1):
            entry = details.history.add(epoch=int(epoch.get("epoch", i)))
            for key, value in _numbers(epoch).items():
                if key != "epoch":
                    entry.metrics[key] = value
        seed = meta.get("seed")
        if isinstance(seed, int) and not details.version.lineage.HasField("seed"):
            details.version.lineage.seed = seed
        device = meta.get("device") or {}
        if not details.version.lineage.device and isinstance(device, dict):
            details.version.lineage.device = str(device.get("name") or device.get("type", ""))
        return details

    # -- listing ---------------------------------------------------------------------------
    def list_models(self, request: pb.ListModelsRequest) -> pb.ListModelsResponse:
        """One page in SQL (``listing``): reads only the page's rows, never the files."""
        strategy = strategy_field(request.strategy_name) if request.strategy_name else ""
        if request.alias:
            check_alias(request.alias)
        if request.page_size < 0:
            raise invalid("page_size: must be >= 0")
        if len(request.order_by) > MAX_METRIC_CHARS:
            raise invalid(f"order_by: at most {MAX_METRIC_CHARS} characters")
        query = listing.Query(
            strategy, request.alias, request.tag, request.order_by, request.descending
        )
        after = listing.decode_token(request.page_token, query)
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        self.registry.store.prepare_listings()
        rows, token = listing.page(self.registry, query, after, size)
        response = pb.ListModelsResponse(next_page_token=token)
        group: pb.StrategyModels | None = None
        for row in rows:
            version = self.version_proto(row)
            response.models.append(version)
            if group is None or group.strategy_name != row.model.strategy_name:
                group = response.strategies.add(strategy_name=row.model.strategy_name)
            group.versions.append(version)
        return response

    # -- deleting --------------------------------------------------------------------------
    def delete(self, row: ModelRow, *, force: bool) -> list[str]:
        directory = self.directory(row)
        trash = self.root / TRASH_DIR
        trash.mkdir(parents=True, exist_ok=True)
        target = trash / f"{row.model.strategy_name}-v{row.model.version}-{uuid.uuid4().hex}"
        moved = False

        def move_out() -> None:
            nonlocal moved
            if directory.is_dir():
                os.rename(directory, target)
                moved = True
            else:
                logger.warning(
                    "model %s v%d: no files at %s to delete (already gone); unregistering it",
                    row.model.strategy_name,
                    row.model.version,
                    directory,
                )

        try:
            aliases = self.registry.delete(
                row.model.strategy_name, row.model.version, force=force, move_out=move_out
            )
        except BaseException:
            if moved:  # the transaction did not commit: put the directory back
                os.rename(target, directory)
            raise
        shutil.rmtree(target, ignore_errors=True)
        logger.info(
            "deleted model %s v%d (aliases removed: %s)",
            row.model.strategy_name,
            row.model.version,
            ", ".join(aliases) or "none",
        )
        return aliases

    # -- archiving -------------------------------------------------------------------------
    def archive(self, row: ModelRow) -> Path:
        """A temporary archive of the version (the bytes SubmitResults carried), verified
        against the recorded SHA-256. The caller removes it."""
        directory = self.directory(row)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=ARCHIVE_PREFIX, suffix=".tar", dir=self.work_dir)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                digest = _write_archive(directory, out.write)
        except FileNotFoundError:
            path.unlink(missing_ok=True)
            raise not_found(
                f"{row.model.strategy_name} v{row.model.version} was deleted meanwhile"
            ) from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if row.model.sha256 and digest != row.model.sha256:
            path.unlink(missing_ok=True)
            logger.error(
                "model %s v%d: archive hashes to %s, %s was recorded",
                row.model.strategy_name,
                row.model.version,
                digest,
                row.model.sha256,
            )
            raise RequestError(
                grpc.StatusCode.DATA_LOSS,
                f"{row.model.strategy_name} v{row.model.version}: the stored files no longer "
                "match the model's recorded SHA-256 (damaged on the server)",
            )
        return path


def _write_archive(directory: Path, write: Callable[[bytes], object]) -> str:
    """Write the deterministic bundle tar (``ModelBundle.to_archive_bytes``'s layout) of
    ``directory``'s files; returns its SHA-256."""
    sha = hashlib.sha256()

    class _Out:
        def write(self, data: bytes) -> int:
            sha.update(data)
            write(data)
            return len(data)

    with tarfile.open(fileobj=_Out(), mode="w|", format=tarfile.USTAR_FORMAT) as tar:  # type: ignore[call-overload]
        for name in sorted(BUNDLE_FILES):
            with open(directory / name, "rb") as fh:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = os.fstat(fh.fileno()).st_size, 0, 0o644
                tar.addfile(info, fh)
    return sha.hexdigest()


def _numbers(mapping: object) -> dict[str, float]:
    if not isinstance(mapping, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in mapping.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


__all__ = ["ModelCatalog"]
