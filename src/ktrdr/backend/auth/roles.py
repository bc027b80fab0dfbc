"""The backend's roles and the table of RPC -> roles allowed to call it.

- ``viewer``: reads: operations and sweeps (Get/List/Watch), models, strategies, the
  training config, server reflection.
- ``trainer``: a viewer who also starts trainings and sweeps and cancels the operations and
  sweeps it created. It also deletes, aliases and tags the models its own operations trained.
- ``admin``: everything, including cancelling anyone's operations and UpdateTrainingConfig.
- ``host``: a training host: delivers models (SubmitResults) and registers itself
  (RegisterHost, HostHeartbeat).
"""

from __future__ import annotations

from ktrdr.security.interceptor import REFLECTION_METHODS, Policy

ROLES = ("viewer", "trainer", "admin", "host")
SERVICE = "/ktrdr.training.v1.Backend/"

_READ = frozenset({"viewer", "trainer", "admin"})
_TRAIN = frozenset({"trainer", "admin"})
_ADMIN = frozenset({"admin"})
_DELIVER = frozenset({"host", "admin"})

RULES: dict[str, frozenset[str]] = {
    **{
        SERVICE + name: _READ
        for name in (
            "GetOperation",
            "ListOperations",
            "WatchOperation",
            "GetTrainingConfig",
            "ListModels",
            "ListStrategies",
            "GetModel",
            "DownloadModel",
            "GetSweep",
            "ListSweeps",
            "WatchSweep",
            "ListHosts",
        )
    },
    # a trainer only models its own token trained: checked by the servicer
    **{
        SERVICE + name: _TRAIN
        for name in ("DeleteModel", "SetModelAlias", "DeleteModelAlias", "SetModelTags")
    },
    SERVICE + "CreateTraining": _TRAIN,
    SERVICE + "CancelOperation": _TRAIN,  # a trainer only its own: checked by the servicer
    SERVICE + "CreateSweep": _TRAIN,
    SERVICE + "CancelSweep": _TRAIN,  # a trainer only its own: checked by the servicer
    SERVICE + "UpdateTrainingConfig": _ADMIN,
    SERVICE + "SubmitResults": _DELIVER,
    SERVICE + "RegisterHost": _DELIVER,
    SERVICE + "HostHeartbeat": _DELIVER,
    **{method: _READ for method in REFLECTION_METHODS},
}


def backend_policy() -> Policy:
    return Policy(RULES)


def may_act_on_any_operation(role: str) -> bool:
    """Admins act on every operation; trainers only on their own."""
    return role == "admin"


__all__ = ["ROLES", "RULES", "backend_policy", "may_act_on_any_operation"]
