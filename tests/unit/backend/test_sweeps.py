"""Sweep studies (Optuna, in-process): a grid used up by parallel trials ends them all
normally. Sweeps through a real backend: ``tests/integration/backend/test_sweeps.py``."""

from __future__ import annotations

from ktrdr.backend.sweeps.study import Studies
from ktrdr.training.v1 import backend_pb2 as pb
from tests.support.needs import needs

pytestmark = needs("optuna")


async def test_a_grid_used_up_by_parallel_trials_ends_them_all_normally(tmp_path):
    """Both trials of a two-point grid asked before either is told (parallelism 2): telling
    the last one used to raise Optuna's "Study.stop is supposed to be invoked inside an
    objective function" (GridSampler.after_trial), failing that trial's follow-up."""
    request = pb.CreateSweepRequest(
        strategy_name="tiny_rsi",
        sampler=pb.SWEEP_SAMPLER_GRID,
        n_trials=2,
        parameters=[
            pb.SweepParameter(path="model.training.epochs", choices=pb.Choices(values=["1", "2"]))
        ],
    )
    studies = Studies(tmp_path / "studies.db")
    try:
        await studies.open("grid", request, create=True)
        first = await studies.ask("grid", request)
        second = await studies.ask("grid", request)
        assert {first.params["model.training.epochs"], second.params["model.training.epochs"]} == {
            "1",
            "2",
        }
        await studies.tell("grid", first.number, "complete", 0.5)
        await studies.tell("grid", second.number, "complete", 0.4)
        assert await studies.running_numbers("grid") == []
    finally:
        studies.close()
