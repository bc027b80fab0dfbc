"""Stored models as remote objects: aliases and tags (``registry``), finding, describing,
listing, deleting and archiving (``catalog``), and the model RPCs (``service``)."""

from ktrdr.backend.models.catalog import ModelCatalog
from ktrdr.backend.models.registry import ModelRegistry, check_alias, check_tags
from ktrdr.backend.models.service import ModelRpcs

__all__ = ["ModelCatalog", "ModelRegistry", "ModelRpcs", "check_alias", "check_tags"]
