"""A fold task's answer on the session's side: a fold that fails fails the session with an
error of the fold's own kind (so the same gRPC status), naming the fold."""

from __future__ import annotations

import pytest

from ktrdr.errors import DataError, StrategyConfigError, TrainingCancelled
from ktrdr.worker.process import WorkerCrashed
from tests.support.needs import needs

pytestmark = needs("ray")

LABEL = "walk-forward fold 2/3"


@pytest.mark.parametrize("error", [DataError("no rows left"), StrategyConfigError(["a: bad"])])
def test_a_library_error_keeps_its_kind_and_names_the_fold(error):
    from ktrdr_host.ray.folds import fold_outcome

    with pytest.raises(type(error)) as raised:
        fold_outcome("error", error, LABEL)
    assert str(raised.value) == f"{LABEL}: {error}"
    assert raised.value.__cause__ is error


def test_a_crash_and_a_cancel_name_the_fold():
    from ktrdr_host.ray.folds import fold_outcome

    with pytest.raises(WorkerCrashed, match=f"^{LABEL} crashed: ZeroDivisionError: boom$"):
        fold_outcome("crash", "ZeroDivisionError: boom", LABEL)
    with pytest.raises(TrainingCancelled, match=f"^{LABEL}: the fold task was cancelled$"):
        fold_outcome("cancelled", "the fold task was cancelled", LABEL)


def test_a_result_passes_through():
    from ktrdr_host.ray.folds import fold_outcome

    result = object()
    assert fold_outcome("result", result, LABEL) is result
