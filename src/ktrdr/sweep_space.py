"""A sweep's search space (``SweepParameter`` messages) as Optuna distributions: one mapping
for the backend's study and for the study a client rebuilds from ``GetSweep``, so both hold
the same space. Imports only the protos; the caller passes ``optuna.distributions``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ktrdr.training.v1 import backend_pb2 as pb


def optuna_distributions(parameters: Iterable[pb.SweepParameter], d: Any) -> dict[str, Any]:
    """``{path: distribution}``; ``d`` is the ``optuna.distributions`` module. Choices stay
    the YAML texts the trials are given."""
    out: dict[str, Any] = {}
    for p in parameters:
        which = p.WhichOneof("space")
        if which == "float_range":
            f = p.float_range
            out[p.path] = d.FloatDistribution(f.low, f.high, log=f.log)
        elif which == "int_range":
            i = p.int_range
            out[p.path] = d.IntDistribution(i.low, i.high, log=i.log, step=i.step or 1)
        else:
            out[p.path] = d.CategoricalDistribution(list(p.choices.values))
    return out
