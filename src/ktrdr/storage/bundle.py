"""The model bundle: ``weights.safetensors`` + ``metadata.json``. No pickle anywhere.

On the wire (host -> backend) a bundle travels as a plain, deterministic tar archive of those
two files; reading an archive accepts exactly those two regular files and nothing else, so a
bundle from the network can never run code or write outside its directory when it is loaded.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ktrdr.errors import BundleError

if TYPE_CHECKING:  # torch loads when a bundle is encoded or decoded, not when this is imported
    import torch

WEIGHTS_FILE = "weights.safetensors"
METADATA_FILE = "metadata.json"
BUNDLE_FILES = (METADATA_FILE, WEIGHTS_FILE)
FORMAT_VERSION = 1
MODEL_PREFIX = "model."
SCALER_MEAN = "scaler.mean"
SCALER_SCALE = "scaler.scale"
MAX_METADATA_BYTES = 64 * 1024 * 1024

REQUIRED_METADATA = (
    "format_version",
    "strategy_name",
    "strategy",
    "symbols",
    "timeframes",
    "feature_names",
    "model",
    "labels",
    "metrics",
    "created_at",
)


@dataclass
class ModelBundle:
    """A trained model: tensors (model state, scaler) plus everything needed to use it."""

    weights: dict[str, torch.Tensor]
    metadata: dict[str, Any]

    @property
    def strategy_name(self) -> str:
        return str(self.metadata["strategy_name"])

    @property
    def symbols(self) -> list[str]:
        return [str(s) for s in self.metadata["symbols"]]

    @property
    def timeframes(self) -> list[str]:
        return [str(t) for t in self.metadata["timeframes"]]

    def model_state(self) -> dict[str, torch.Tensor]:
        return {
            k[len(MODEL_PREFIX) :]: v for k, v in self.weights.items() if k.startswith(MODEL_PREFIX)
        }

    # -- validation --------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``BundleError`` unless metadata and tensors are complete and consistent."""
        missing = [k for k in REQUIRED_METADATA if k not in self.metadata]
        if missing:
            raise BundleError(f"bundle metadata lacks {', '.join(missing)}")
        if self.metadata["format_version"] != FORMAT_VERSION:
            raise BundleError(
                f"bundle format {self.metadata['format_version']!r} is not supported "
                f"(expected {FORMAT_VERSION})"
            )
        if not self.model_state():
            raise BundleError("bundle has no model weights")
        n_features = len(self.metadata["feature_names"])
        for key in (SCALER_MEAN, SCALER_SCALE):
            tensor = self.weights.get(key)
            if tensor is None or tuple(tensor.shape) != (n_features,):
                raise BundleError(f"bundle tensor {key!r} missing or not of shape ({n_features},)")

    # -- bytes ---------------------------------------------------------------------------
    def _file_bytes(self) -> dict[str, bytes]:
        from safetensors.torch import save as st_save

        weights = {k: v.detach().cpu().contiguous() for k, v in self.weights.items()}
        # no sort_keys: key order carries meaning (fuzzy sets are features in YAML order)
        meta = json.dumps(self.metadata, indent=2, allow_nan=True).encode()
        return {METADATA_FILE: meta, WEIGHTS_FILE: st_save(weights)}

    @classmethod
    def _from_file_bytes(cls, files: dict[str, bytes], origin: str) -> ModelBundle:
        from safetensors.torch import load as st_load

        try:
            metadata = json.loads(files[METADATA_FILE])
        except (ValueError, UnicodeDecodeError) as exc:
            raise BundleError(f"{origin}: {METADATA_FILE} is not valid JSON: {exc}") from exc
        if not isinstance(metadata, dict):
            raise BundleError(f"{origin}: {METADATA_FILE} must hold a JSON object")
        try:
            weights = st_load(files[WEIGHTS_FILE])
        except Exception as exc:  # safetensors raises its own error types
            raise BundleError(
                f"{origin}: {WEIGHTS_FILE} is not a valid safetensors file: {exc}"
            ) from exc
        bundle = cls(weights=dict(weights), metadata=metadata)
        try:
            bundle.validate()
        except BundleError as exc:
            raise BundleError(f"{origin}: {exc}") from None
        return bundle

    # -- directory form ------------------------------------------------------------------
    def write(self, directory: Path) -> None:
        """Write both files into ``directory`` (created if needed), flushed to disk."""
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in self._file_bytes().items():
            with open(directory / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())

    @classmethod
    def read(cls, directory: Path) -> ModelBundle:
        directory = Path(directory)
        files = {}
        for name in BUNDLE_FILES:
            path = directory / name
            if not path.is_file():
                raise BundleError(f"{directory}: {name} is missing; not a model bundle")
            files[name] = path.read_bytes()
        return cls._from_file_bytes(files, str(directory))

    # -- archive form (transfer) -----------------------------------------------------------
    def to_archive_bytes(self) -> bytes:
        """A deterministic tar of the two files (same bundle -> same bytes -> same hash)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for name, data in sorted(self._file_bytes().items()):
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    def to_archive(self, path: Path) -> None:
        data = self.to_archive_bytes()
        with open(path, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    @classmethod
    def from_archive(cls, path: Path, *, max_member_bytes: int | None = None) -> ModelBundle:
        """Read a bundle archive; anything but the two expected regular files is rejected."""
        with open(path, "rb") as fh:
            return cls._from_archive_file(fh, max_member_bytes)

    @classmethod
    def from_archive_bytes(cls, data: bytes, *, max_member_bytes: int | None = None) -> ModelBundle:
        """``from_archive`` for an archive held in memory (e.g. from a worker process)."""
        return cls._from_archive_file(io.BytesIO(data), max_member_bytes)

    @classmethod
    def _from_archive_file(
        cls, fileobj: BinaryIO, max_member_bytes: int | None = None
    ) -> ModelBundle:
        files: dict[str, bytes] = {}
        try:
            with tarfile.open(fileobj=fileobj, mode="r:") as tar:
                for member in tar:
                    if member.name not in BUNDLE_FILES or not member.isreg():
                        raise BundleError(
                            f"unexpected archive member {member.name!r}; a bundle holds only "
                            f"{' and '.join(BUNDLE_FILES)}"
                        )
                    if member.name in files:
                        raise BundleError(f"archive holds {member.name!r} twice")
                    limit = max_member_bytes or (1 << 40)
                    if member.name == METADATA_FILE:
                        limit = min(limit, MAX_METADATA_BYTES)
                    if member.size > limit:
                        raise BundleError(f"archive member {member.name!r} is too large")
                    fh = tar.extractfile(member)
                    if fh is None:
                        raise BundleError(f"archive member {member.name!r} cannot be read")
                    files[member.name] = fh.read()
        except tarfile.TarError as exc:
            raise BundleError(f"not a bundle archive: {exc}") from exc
        missing = [n for n in BUNDLE_FILES if n not in files]
        if missing:
            raise BundleError(f"bundle archive lacks {', '.join(missing)}")
        return cls._from_file_bytes(files, "bundle archive")
