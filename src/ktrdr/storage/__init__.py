"""Model bundles (safetensors + JSON) and their versioned storage."""

from ktrdr.storage.bundle import BUNDLE_FILES, METADATA_FILE, WEIGHTS_FILE, ModelBundle
from ktrdr.storage.model_storage import (
    ModelStorage,
    StoredModel,
    check_strategy_name,
    combo_name,
    locate_model,
)

__all__ = [
    "BUNDLE_FILES",
    "METADATA_FILE",
    "WEIGHTS_FILE",
    "ModelBundle",
    "ModelStorage",
    "StoredModel",
    "check_strategy_name",
    "combo_name",
    "locate_model",
]
