"""Library settings, read from the environment (prefix ``KTRDR_``) or an optional ``.env``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class LibrarySettings(BaseSettings):
    """Where the training library finds data and models, and which device it trains on."""

    model_config = SettingsConfigDict(
        env_prefix="KTRDR_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Compute device: auto picks CUDA, then MPS, then CPU (KTRDR_DEVICE).
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    # Directory holding {SYMBOL}_{TIMEFRAME}.csv / .parquet files (KTRDR_DATA_DIR).
    data_dir: Path = Path("data/samples")
    # Root of the versioned model store (KTRDR_MODELS_DIR).
    models_dir: Path = Path("models")

    @field_validator("device", mode="before")
    @classmethod
    def _lower_device(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


__all__ = ["LibrarySettings"]
