"""The example search space of the sweep tests and ``bench_sweep``: a float (log), an int and
a choice, each a path of the tiny strategy."""

from __future__ import annotations

from ktrdr.training.v1 import backend_pb2 as pb


def space() -> list[pb.SweepParameter]:
    return [
        pb.SweepParameter(
            path="model.training.learning_rate",
            float_range=pb.FloatRange(low=1e-3, high=1e-1, log=True),
        ),
        pb.SweepParameter(
            path="model.architecture.hidden_layers[0]", int_range=pb.IntRange(low=4, high=16)
        ),
        pb.SweepParameter(
            path="model.architecture.activation", choices=pb.Choices(values=["relu", "tanh"])
        ),
    ]
