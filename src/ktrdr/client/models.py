"""Stored models from any machine that reaches the backend: show, list, download, delete,
alias and tag them (mixed into ``TrainingClient``).

A model reference is ``strategy`` (its latest version), ``strategy:VERSION`` or
``strategy@ALIAS``. Downloads are cached by the archive's SHA-256 under
``$KTRDR_CACHE_DIR`` (default ``~/.cache/ktrdr``), resumed after an interruption, verified,
and unpacked into a bundle directory (``metadata.json`` + ``weights.safetensors``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tarfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from ktrdr.client.errors import KtrdrClientError, service_error
from ktrdr.client.records import ModelInfo, ModelRef, models_from_proto
from ktrdr.metric_order import lower_is_better
from ktrdr.training.v1 import backend_pb2, backend_pb2_grpc
from ktrdr.transfer.download import receive_download
from ktrdr.transfer.errors import TransferError

logger = logging.getLogger(__name__)

CACHE_DIR_ENV = "KTRDR_CACHE_DIR"
BUNDLE_MEMBERS = ("metadata.json", "weights.safetensors")
MAX_DOWNLOAD_BYTES = 4 << 30
DOWNLOAD_ATTEMPTS = 3
_REF = re.compile(
    r"^(?P<strategy>[A-Za-z0-9][A-Za-z0-9._-]{0,99})"
    r"(?::(?P<version>[0-9]{1,9})|@(?P<alias>[a-z][a-z0-9_-]{0,39}))?$"
)
_RETRYABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model reference."""

    strategy: str
    version: int = 0  # 0: the latest (or the alias's)
    alias: str = ""

    def __str__(self) -> str:
        if self.alias:
            return f"{self.strategy}@{self.alias}"
        return f"{self.strategy}:{self.version}" if self.version else self.strategy

    def to_proto(self) -> backend_pb2.ModelSelector:
        return backend_pb2.ModelSelector(
            strategy_name=self.strategy, version=self.version, alias=self.alias
        )


def parse_model_ref(ref: str | ModelSpec | ModelInfo | ModelRef) -> ModelSpec:
    """``strategy``, ``strategy:VERSION`` or ``strategy@ALIAS`` (or a record naming one)."""
    if isinstance(ref, ModelSpec):
        return ref
    if isinstance(ref, ModelInfo | ModelRef):
        return ModelSpec(ref.strategy, ref.version)
    match = _REF.match(ref)
    if match is None:
        raise KtrdrClientError(
            f"{ref!r} is not a model reference: use STRATEGY, STRATEGY:VERSION or "
            "STRATEGY@ALIAS (e.g. rsi_single:3, rsi_single@production)"
        )
    version = int(match["version"]) if match["version"] else 0
    if match["version"] and version == 0:
        raise KtrdrClientError(f"{ref!r}: versions start at 1")
    return ModelSpec(match["strategy"], version, match["alias"] or "")


def is_model_ref(text: str) -> bool:
    return _REF.match(text) is not None


def default_cache_dir() -> Path:
    base = os.environ.get(CACHE_DIR_ENV)
    if base:
        return Path(base) / "models"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ktrdr" / "models"


@dataclass(frozen=True)
class ModelDetails:
    """Everything the backend knows about one stored model (``TrainingClient.get_model``)."""

    info: ModelInfo
    history: list[dict[str, float]] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    timeframes: list[str] = field(default_factory=list)
    size_bytes: int = 0
    model_type: str = ""
    feature_count: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    ktrdr_version: str = ""

    @classmethod
    def from_proto(cls, m: backend_pb2.ModelDetails) -> ModelDetails:
        return cls(
            info=ModelInfo.from_proto(m.version),
            history=[{"epoch": h.epoch, **dict(h.metrics)} for h in m.history],
            symbols=list(m.symbols),
            timeframes=list(m.timeframes),
            size_bytes=m.size_bytes,
            model_type=m.model_type,
            feature_count=m.feature_count,
            metrics=dict(m.metrics),
            ktrdr_version=m.ktrdr_version,
        )

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "info"}
        return {**self.info.to_dict(), **out}


def extract_bundle(archive: Path, target: Path) -> None:
    """Unpack a bundle archive (exactly the two bundle files, regular, bounded) into
    ``target``, atomically: a temporary directory renamed into place."""
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir(parents=True)
    try:
        with tarfile.open(archive, mode="r:") as tar:
            seen = set()
            for member in tar:
                if member.name not in BUNDLE_MEMBERS or not member.isreg() or member.name in seen:
                    raise KtrdrClientError(
                        f"downloaded archive holds {member.name!r}: not a model bundle"
                    )
                seen.add(member.name)
                source = tar.extractfile(member)
                assert source is not None
                with source, open(tmp / member.name, "wb") as out:
                    shutil.copyfileobj(source, out)
            if seen != set(BUNDLE_MEMBERS):
                raise KtrdrClientError("downloaded archive lacks bundle files")
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / BUNDLE_MEMBERS[0]).is_file():  # not a concurrent twin
                raise
    except tarfile.TarError as exc:
        raise KtrdrClientError(f"downloaded archive is not a bundle: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class ModelCalls:
    """The model methods of ``TrainingClient`` (needs its ``backend_stub`` and ``_call``)."""

    backend_stub: backend_pb2_grpc.BackendStub
    _call: Callable[..., Any]

    def models(
        self,
        strategy: str | None = None,
        *,
        alias: str = "",
        tag: str = "",
        sort: str = "",
        descending: bool | None = None,
        limit: int = 0,
    ) -> list[ModelInfo]:
        """Stored model versions (by strategy, then version; or by the ``sort`` metric,
        highest first unless ``descending=False``; a loss or drawdown lowest first)."""
        if descending is None:
            descending = bool(sort) and not lower_is_better(sort)
        out: list[ModelInfo] = []
        token = ""
        while True:
            response = self._call(
                self.backend_stub.ListModels,
                backend_pb2.ListModelsRequest(
                    strategy_name=strategy or "",
                    alias=alias,
                    tag=tag,
                    order_by=sort,
                    descending=descending,
                    page_token=token,
                ),
            )
            out.extend(models_from_proto(response))
            token = response.next_page_token
            if not token or (limit and len(out) >= limit):
                return out[:limit] if limit else out

    def get_model(self, ref: str | ModelSpec | ModelInfo | ModelRef) -> ModelDetails:
        """One stored model: metadata, metrics, history, aliases, tags and lineage."""
        spec = parse_model_ref(ref)
        response = self._call(
            self.backend_stub.GetModel, backend_pb2.GetModelRequest(model=spec.to_proto())
        )
        return ModelDetails.from_proto(response.model)

    def download_model(
        self,
        ref: str | ModelSpec | ModelInfo | ModelRef,
        dest: str | Path | None = None,
        *,
        cache_dir: str | Path | None = None,
        timeout_s: float = 600.0,
    ) -> Path:
        """Download a model's bundle (cached by SHA-256, resumed, verified); returns the
        bundle directory: in the cache, or a copy at ``dest`` (which must not exist)."""
        details = self.get_model(ref)
        info = details.info
        cache = Path(cache_dir) if cache_dir else default_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        bundle_dir = cache / info.sha256
        if not (bundle_dir / BUNDLE_MEMBERS[0]).is_file():
            part = cache / f"{info.sha256}.tar.part"
            self._fetch(info, part, timeout_s)
            extract_bundle(part, bundle_dir)
            part.unlink(missing_ok=True)
        else:
            logger.info("model %s: cached at %s", info.name, bundle_dir)
        if dest is None:
            return bundle_dir
        target = Path(dest)
        if target.exists():
            raise KtrdrClientError(f"{target} already exists: choose a new directory")
        shutil.copytree(bundle_dir, target)
        return target

    def _fetch(self, info: ModelInfo, part: Path, timeout_s: float) -> None:
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            offset = part.stat().st_size if part.exists() else 0
            request = backend_pb2.DownloadModelRequest(
                model=backend_pb2.ModelSelector(strategy_name=info.strategy, version=info.version),
                offset=offset,
                expected_sha256=info.sha256,
            )
            try:
                stream = self.backend_stub.DownloadModel(request, timeout=timeout_s)
                receive_download(
                    stream, part, max_raw_bytes=MAX_DOWNLOAD_BYTES, expected_sha256=info.sha256
                )
                return
            except TransferError as exc:
                # A stream that broke off keeps its bytes for the next attempt; a corrupt one
                # has removed them already.
                if exc.code == grpc.StatusCode.INVALID_ARGUMENT:  # a stale partial file
                    part.unlink(missing_ok=True)
                if attempt == DOWNLOAD_ATTEMPTS:
                    raise KtrdrClientError(f"download of {info.name}: {exc.message}") from None
                logger.warning("download of %s: %s; resuming", info.name, exc.message)
            except grpc.RpcError as exc:
                code = exc.code() if isinstance(exc, grpc.Call) else None
                if code == grpc.StatusCode.FAILED_PRECONDITION:  # another model now
                    part.unlink(missing_ok=True)
                if code not in _RETRYABLE or attempt == DOWNLOAD_ATTEMPTS:
                    raise service_error(
                        exc, getattr(self, "address", ""), getattr(self, "tls", None)
                    ) from None
                logger.warning("download of %s broke off (%s); resuming", info.name, code)

    def delete_model(
        self, ref: str | ModelSpec | ModelInfo | ModelRef, *, force: bool = False
    ) -> list[str]:
        """Delete one version (``strategy:VERSION``); returns the aliases removed with it
        (only with ``force``: a version with aliases is refused otherwise)."""
        spec = self.resolve_version(ref)
        response = self._call(
            self.backend_stub.DeleteModel,
            backend_pb2.DeleteModelRequest(
                strategy_name=spec.strategy, version=spec.version, force=force
            ),
        )
        return list(response.removed_aliases)

    def set_alias(self, ref: str | ModelSpec | ModelInfo | ModelRef, alias: str) -> int:
        """Point ``alias`` of the model's strategy at it (``strategy:VERSION``); returns the
        version it pointed at before (0 when new)."""
        spec = self.resolve_version(ref)
        response = self._call(
            self.backend_stub.SetModelAlias,
            backend_pb2.SetModelAliasRequest(
                strategy_name=spec.strategy, alias=alias, version=spec.version
            ),
        )
        return int(response.previous_version)

    def delete_alias(self, strategy: str, alias: str) -> int:
        """Remove an alias; returns the version it pointed at."""
        response = self._call(
            self.backend_stub.DeleteModelAlias,
            backend_pb2.DeleteModelAliasRequest(strategy_name=strategy, alias=alias),
        )
        return int(response.version)

    def tag_model(
        self,
        ref: str | ModelSpec | ModelInfo | ModelRef,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
    ) -> list[str]:
        """Add and remove tags of a version; returns its tags now."""
        spec = self.resolve_version(ref)
        response = self._call(
            self.backend_stub.SetModelTags,
            backend_pb2.SetModelTagsRequest(
                strategy_name=spec.strategy,
                version=spec.version,
                add=list(add),
                remove=list(remove),
            ),
        )
        return list(response.tags)

    def resolve_version(self, ref: str | ModelSpec | ModelInfo | ModelRef) -> ModelSpec:
        """A reference resolved to one version (an alias or 'latest' asked from the backend)."""
        spec = parse_model_ref(ref)
        if spec.version:
            return spec
        info = self.get_model(spec).info
        return ModelSpec(info.strategy, info.version)


__all__ = [
    "CACHE_DIR_ENV",
    "ModelCalls",
    "ModelDetails",
    "ModelSpec",
    "default_cache_dir",
    "extract_bundle",
    "is_model_ref",
    "parse_model_ref",
]
