"""Optuna behind one worker thread: the studies, their storage, ask / report / tell.

Optuna (and through it numpy and SQLAlchemy) is imported on the first call, in that thread,
so a backend that never runs a sweep never loads it. Every call into Optuna goes through the
same single thread: the RDB storage on SQLite sees one writer at a time, and the event loop
never blocks on it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ktrdr.backend.sweeps.space import format_value, grid_space
from ktrdr.sweep_space import optuna_distributions
from ktrdr.training.v1 import backend_pb2 as pb

logger = logging.getLogger(__name__)


class OptunaMissing(RuntimeError):
    """Optuna is not installed (the ``sweeps`` extra)."""


def optuna_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("optuna") is not None


def _ask_and_tell_grid(optuna: Any) -> Any:
    """Optuna's ``GridSampler`` for the ask-and-tell interface the sweeps use.

    Its ``after_trial`` only calls ``study.stop()`` once the grid is used up, which Optuna
    refuses outside ``study.optimize`` (RuntimeError "Study.stop is supposed to be invoked
    inside an objective function or a callback"): with parallel trials, the trial told last
    failed with it (the state is stored anyway). A sweep stops by counting its trials.
    """

    class AskAndTellGridSampler(optuna.samplers.GridSampler):  # type: ignore[misc,name-defined]
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return AskAndTellGridSampler


@dataclass
class AskedTrial:
    number: int
    params: dict[str, str]  # path -> YAML text
    handle: Any  # optuna.Trial


class Studies:
    """The Optuna studies of this backend, in ``path`` (an SQLite file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="optuna")
        self._storage: Any = None
        self._studies: dict[str, Any] = {}

    async def _call(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    # -- in the optuna thread ------------------------------------------------------------
    def _optuna(self) -> Any:
        try:
            import optuna
        except ImportError:
            raise OptunaMissing(
                "sweeps need Optuna on the backend: pip install 'ktrdr[sweeps]'"
            ) from None
        if self._storage is None:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._storage = optuna.storages.RDBStorage(
                f"sqlite:///{self.path}", engine_kwargs={"connect_args": {"timeout": 30}}
            )
        return optuna

    def _open(self, request: pb.CreateSweepRequest, sweep_id: str, create: bool) -> Any:
        optuna = self._optuna()
        seed = request.seed
        if request.sampler == pb.SWEEP_SAMPLER_RANDOM:
            sampler = optuna.samplers.RandomSampler(seed=seed)
        elif request.sampler == pb.SWEEP_SAMPLER_GRID:
            sampler = _ask_and_tell_grid(optuna)(grid_space(request), seed=seed)
        else:
            sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
        if request.pruner == pb.SWEEP_PRUNER_NONE:
            pruner = optuna.pruners.NopPruner()
        else:
            pruner = optuna.pruners.MedianPruner(
                n_startup_trials=request.pruner_startup_trials,
                n_warmup_steps=request.pruner_warmup_epochs,
            )
        direction = (
            "minimize" if request.direction == pb.OBJECTIVE_DIRECTION_MINIMIZE else "maximize"
        )
        study = optuna.create_study(
            storage=self._storage,
            study_name=sweep_id,
            sampler=sampler,
            pruner=pruner,
            direction=direction,
            load_if_exists=not create,
        )
        self._studies[sweep_id] = study
        return study

    def _distributions(self, request: pb.CreateSweepRequest) -> dict[str, Any]:
        return optuna_distributions(request.parameters, self._optuna().distributions)

    def _ask(self, sweep_id: str, request: pb.CreateSweepRequest) -> AskedTrial:
        study = self._studies[sweep_id]
        trial = study.ask(self._distributions(request))
        params = {path: format_value(value) for path, value in trial.params.items()}
        return AskedTrial(trial.number, params, trial)

    def _report(self, handle: Any, value: float, step: int) -> bool:
        handle.report(value, step)
        return bool(handle.should_prune())

    def _tell(self, sweep_id: str, number: int, state: str, value: float | None) -> None:
        optuna = self._optuna()
        study = self._studies[sweep_id]
        states = optuna.trial.TrialState
        if state == "complete" and value is not None and math.isfinite(value):
            study.tell(number, value, skip_if_finished=True)
        elif state == "pruned":
            study.tell(number, state=states.PRUNED, skip_if_finished=True)
        else:
            study.tell(number, state=states.FAIL, skip_if_finished=True)

    def _running_numbers(self, sweep_id: str) -> list[int]:
        optuna = self._optuna()
        study = self._studies[sweep_id]
        running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        return [t.number for t in running]

    def _handle(self, sweep_id: str, number: int) -> Any:
        optuna = self._optuna()
        study = self._studies[sweep_id]
        trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
        return optuna.trial.Trial(study, trial_id)

    # -- from the event loop -------------------------------------------------------------
    async def open(self, sweep_id: str, request: pb.CreateSweepRequest, *, create: bool) -> None:
        await self._call(self._open, request, sweep_id, create)

    async def ask(self, sweep_id: str, request: pb.CreateSweepRequest) -> AskedTrial:
        return await self._call(self._ask, sweep_id, request)  # type: ignore[no-any-return]

    async def report(self, handle: Any, value: float, step: int) -> bool:
        """Report an epoch's value; True when the pruner says stop."""
        return await self._call(self._report, handle, value, step)  # type: ignore[no-any-return]

    async def tell(
        self, sweep_id: str, number: int, state: str, value: float | None = None
    ) -> None:
        """End a trial: state "complete" (with its value), "pruned" or "fail"."""
        await self._call(self._tell, sweep_id, number, state, value)

    async def running_numbers(self, sweep_id: str) -> list[int]:
        return await self._call(self._running_numbers, sweep_id)  # type: ignore[no-any-return]

    async def handle(self, sweep_id: str, number: int) -> Any:
        return await self._call(self._handle, sweep_id, number)

    def forget(self, sweep_id: str) -> None:
        self._studies.pop(sweep_id, None)


__all__ = ["AskedTrial", "OptunaMissing", "Studies", "optuna_available"]
