"""A CreateSweep request checked and normalised: bounds, search space, objective, defaults.

Everything here is plain Python (no Optuna): the request is validated before any study
exists, with INVALID_ARGUMENT naming the parameter, and the normalised request (defaults
filled in, fixed overrides written into the strategy text) is what the store keeps.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Any

import grpc

from ktrdr.backend.errors import RequestError
from ktrdr.backend.sweeps.selection_bias import check_objective
from ktrdr.config.field_overrides import load_value, parse_field_path
from ktrdr.echo import short_repr
from ktrdr.metric_order import lower_is_better
from ktrdr.training.progress import EPOCH_METRICS
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import common_pb2

MAX_PARAMETERS = 32
MAX_CHOICES = 256
MAX_GRID = 100_000
MAX_METRIC_CHARS = 100
DEFAULT_OBJECTIVE = "val_loss"
DEFAULT_STARTUP_TRIALS = 5


@dataclass(frozen=True)
class SweepBounds:
    max_trials: int
    max_parallelism: int


def _bad(message: str) -> RequestError:
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def format_value(value: Any) -> str:
    """A sampled value as YAML text that reads back as the same value (``1.0e-05``, not the
    ``1e-05`` that YAML 1.1 reads as a string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        if "e" in text:
            mantissa, exponent = text.split("e")
            if "." not in mantissa:
                mantissa += ".0"
            if exponent[0] not in "+-":
                exponent = "+" + exponent
            text = f"{mantissa}e{exponent}"
        return text
    return str(value)


def default_direction(objective: str) -> int:
    """Minimise losses and drawdowns, maximise the rest (``ktrdr.metric_order``)."""
    return (
        pb.OBJECTIVE_DIRECTION_MINIMIZE
        if lower_is_better(objective)
        else pb.OBJECTIVE_DIRECTION_MAXIMIZE
    )


def _check_parameter(i: int, parameter: pb.SweepParameter) -> None:
    where = f"parameters[{i}] ({short_repr(parameter.path)})"
    try:
        parse_field_path(parameter.path)
    except ValueError as exc:
        raise _bad(f"parameters[{i}].path: {exc}") from None
    which = parameter.WhichOneof("space")
    if which == "float_range":
        r = parameter.float_range
        if not (math.isfinite(r.low) and math.isfinite(r.high)) or r.low >= r.high:
            raise _bad(
                f"{where}: float_range needs finite low < high, got {r.low}..{r.high} (for one "
                "value use choices)"
            )
        if r.log and r.low <= 0:
            raise _bad(f"{where}: a log float_range needs low > 0, got {r.low}")
    elif which == "int_range":
        ir = parameter.int_range
        if ir.low >= ir.high:
            raise _bad(
                f"{where}: int_range needs low < high, got {ir.low}..{ir.high} (for one value "
                "use choices)"
            )
        if ir.step < 0:
            raise _bad(f"{where}: int_range step must be >= 1 (0 means 1), got {ir.step}")
        if ir.log and (ir.low < 1 or ir.step not in (0, 1)):
            raise _bad(f"{where}: a log int_range needs low >= 1 and step 1")
    elif which == "choices":
        values = parameter.choices.values
        if not values or len(values) > MAX_CHOICES:
            raise _bad(f"{where}: choices needs 1 to {MAX_CHOICES} values, got {len(values)}")
        if len(set(values)) != len(values):
            raise _bad(f"{where}: choices has repeated values")
        for j, value in enumerate(values):
            try:
                load_value(value)
            except ValueError as exc:
                raise _bad(f"{where}: choices[{j}]: {exc}") from None
    else:
        raise _bad(f"{where}: set float_range, int_range or choices")


def grid_values(parameter: pb.SweepParameter) -> list[Any]:
    """The values a grid takes for one parameter (choices or an int range)."""
    which = parameter.WhichOneof("space")
    if which == "choices":
        return list(parameter.choices.values)
    if which == "int_range":
        r = parameter.int_range
        return list(range(r.low, r.high + 1, r.step or 1))
    raise _bad(
        f"parameter {short_repr(parameter.path)}: the grid sampler takes choices or int "
        "ranges only (a float_range has no grid; list its values as choices)"
    )


def _extremes(parameter: pb.SweepParameter) -> list[str]:
    """Every value a parameter can reach its bounds with: a range's ends, every choice."""
    which = parameter.WhichOneof("space")
    if which == "float_range":
        r = parameter.float_range
        return [format_value(float(r.low)), format_value(float(r.high))]
    if which == "int_range":
        return [str(parameter.int_range.low), str(parameter.int_range.high)]
    return list(parameter.choices.values)


def sample_values(request: pb.CreateSweepRequest) -> list[list[common_pb2.FieldOverride]]:
    """Probes that together put every parameter at each of its extremes (both ends of each
    range, each choice), to check paths and values against the strategy and its work limits
    before the sweep starts: ``epochs: int:1:1e18`` is refused there, not at a trial."""
    extremes = [(p.path, _extremes(p)) for p in request.parameters]
    rounds = max((len(values) for _, values in extremes), default=0)
    return [
        [
            common_pb2.FieldOverride(path=path, value=values[min(k, len(values) - 1)])
            for path, values in extremes
        ]
        for k in range(rounds)
    ]


def normalise(request: pb.CreateSweepRequest, bounds: SweepBounds) -> pb.CreateSweepRequest:
    """A copy with every default filled in; INVALID_ARGUMENT for anything out of bounds."""
    out = pb.CreateSweepRequest()
    out.CopyFrom(request)
    if not 1 <= len(out.parameters) <= MAX_PARAMETERS:
        raise _bad(f"parameters: 1 to {MAX_PARAMETERS} needed, got {len(out.parameters)}")
    paths = [p.path for p in out.parameters]
    if len(set(paths)) != len(paths):
        raise _bad("parameters: each path at most once")
    for i, parameter in enumerate(out.parameters):
        _check_parameter(i, parameter)
    out.objective = out.objective or DEFAULT_OBJECTIVE
    if len(out.objective) > MAX_METRIC_CHARS or len(out.prune_metric) > MAX_METRIC_CHARS:
        raise _bad(f"objective, prune_metric: at most {MAX_METRIC_CHARS} characters")
    check_objective(out)
    if out.direction not in (0, pb.OBJECTIVE_DIRECTION_MINIMIZE, pb.OBJECTIVE_DIRECTION_MAXIMIZE):
        raise _bad(f"direction: {out.direction} is not MINIMIZE or MAXIMIZE (or unset)")
    out.direction = out.direction or default_direction(out.objective)  # type: ignore[assignment]
    minimise = out.direction == pb.OBJECTIVE_DIRECTION_MINIMIZE
    out.prune_metric = out.prune_metric or ("val_loss" if minimise else "val_accuracy")
    if out.sampler not in (0, *pb.SweepSampler.values()):
        raise _bad(f"sampler: {out.sampler} is not TPE, RANDOM or GRID (or unset)")
    out.sampler = out.sampler or pb.SWEEP_SAMPLER_TPE  # type: ignore[assignment]
    if out.pruner not in (0, *pb.SweepPruner.values()):
        raise _bad(f"pruner: {out.pruner} is not MEDIAN or NONE (or unset)")
    out.pruner = out.pruner or pb.SWEEP_PRUNER_MEDIAN  # type: ignore[assignment]
    if out.pruner == pb.SWEEP_PRUNER_MEDIAN and out.prune_metric not in EPOCH_METRICS:
        raise _bad(
            f"prune_metric {short_repr(out.prune_metric)} is not reported at each epoch, so "
            f"the pruner would never act; use one of {', '.join(EPOCH_METRICS)}, or pruner "
            "NONE"
        )
    if not out.HasField("pruner_startup_trials"):
        out.pruner_startup_trials = DEFAULT_STARTUP_TRIALS
    if not out.HasField("pruner_warmup_epochs"):
        out.pruner_warmup_epochs = 0
    if out.pruner_startup_trials < 0 or out.pruner_warmup_epochs < 0:
        raise _bad("pruner_startup_trials, pruner_warmup_epochs: must be >= 0")
    if out.sampler == pb.SWEEP_SAMPLER_GRID:
        size = 1
        for parameter in out.parameters:
            size *= len(grid_values(parameter))
            if size > MAX_GRID:
                raise _bad(f"parameters: the grid has more than {MAX_GRID} combinations")
        out.n_trials = min(out.n_trials or size, size)
    if not 1 <= out.n_trials <= bounds.max_trials:
        raise _bad(
            f"n_trials: 1 to {bounds.max_trials} (KTRDR_BACKEND_SWEEP_MAX_TRIALS), "
            f"got {out.n_trials}"
        )
    out.parallelism = out.parallelism or 1
    if not 1 <= out.parallelism <= bounds.max_parallelism:
        raise _bad(
            f"parallelism: 1 to {bounds.max_parallelism} (KTRDR_BACKEND_SWEEP_MAX_PARALLELISM), "
            f"got {out.parallelism}"
        )
    if not out.HasField("seed"):
        out.seed = secrets.randbelow(1 << 31)
    return out


def grid_space(request: pb.CreateSweepRequest) -> dict[str, list[Any]]:
    return {p.path: grid_values(p) for p in request.parameters}


__all__ = [
    "MAX_PARAMETERS",
    "SweepBounds",
    "default_direction",
    "format_value",
    "grid_space",
    "normalise",
    "sample_values",
]
