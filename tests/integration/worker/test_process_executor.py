"""ProcessExecutor: training in a worker process, with real processes and real data."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ktrdr.config import parse_strategy
from ktrdr.errors import DataError, StrategyConfigError, TrainingCancelled, WorkerDied
from ktrdr.training.cancellation import CancellationToken
from ktrdr.training.progress import ProgressEvent, ProgressKind
from ktrdr.worker import ProcessExecutor, SparePool, thread_budget
from ktrdr.worker.budget import available_cpus
from tests.support.timing import scaled

pytestmark = pytest.mark.integration


def gone(pid: int) -> bool:
    """True once ``pid`` is no process at all (not even an unreaped zombie)."""
    return not Path(f"/proc/{pid}").exists()


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


@pytest.fixture
def long_yaml(tiny_strategy_yaml: str) -> str:
    return tiny_strategy_yaml.replace("epochs: 4", "epochs: 400")


@pytest.fixture
def pool() -> Iterator[SparePool]:
    spares = SparePool(threads=1, spares=1)
    yield spares
    spares.close()


class EpochWatcher:
    """A progress callback that says when the first epoch was reported."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []
        self.epoch = threading.Event()

    def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)
        if event.kind == ProgressKind.EPOCH:
            self.epoch.set()


def test_worker_trains_like_the_library_and_reports_progress(
    sample_data_dir: Path, tiny_strategy_yaml: str, pool: SparePool
) -> None:
    import torch

    from ktrdr.training.executor import TrainingExecutor

    config = parse_strategy(tiny_strategy_yaml)
    watcher = EpochWatcher()
    executor = ProcessExecutor(sample_data_dir, device="cpu", pool=pool)
    outcome = executor.run_outcome(config, watcher, strategy_yaml=tiny_strategy_yaml)
    in_process = TrainingExecutor(sample_data_dir, device="cpu").run(
        config, strategy_yaml=tiny_strategy_yaml
    )
    result = outcome.to_result()
    assert result.bundle.weights.keys() == in_process.bundle.weights.keys()
    for name, tensor in in_process.bundle.weights.items():
        assert torch.equal(result.bundle.weights[name], tensor), name
    timing = {"train_samples_per_s"}
    assert {k: v for k, v in result.summary.items() if k not in timing} == {
        k: v for k, v in in_process.summary.items() if k not in timing
    }
    kinds = [e.kind for e in watcher.events]
    assert kinds.count(ProgressKind.STEP_STARTED) == 11
    assert kinds.count(ProgressKind.EPOCH) == 4
    assert outcome.threads == 1  # the pool's budget, not torch's default of one per core
    assert executor.last_pid != os.getpid()
    wait_until(lambda: gone(executor.last_pid))


def test_cancellation_reaches_the_worker(
    sample_data_dir: Path, long_yaml: str, pool: SparePool
) -> None:
    executor = ProcessExecutor(sample_data_dir, device="cpu", pool=pool)
    token = CancellationToken()
    watcher = EpochWatcher()
    with ThreadPoolExecutor(1) as threads:
        running = threads.submit(executor.run, parse_strategy(long_yaml), watcher, token)
        assert watcher.epoch.wait(60), "no epoch reported"
        token.cancel("stop, please")
        with pytest.raises(TrainingCancelled, match="stop, please"):
            running.result(timeout=scaled(30))
    epochs = [e for e in watcher.events if e.kind == ProgressKind.EPOCH]
    assert len(epochs) < 400
    wait_until(lambda: gone(executor.last_pid))


def test_cancel_before_the_worker_is_ready_stops_it_at_once(
    sample_data_dir: Path, long_yaml: str
) -> None:
    executor = ProcessExecutor(sample_data_dir, device="cpu")  # no spare: a cold worker
    token = CancellationToken()
    with ThreadPoolExecutor(1) as threads:
        running = threads.submit(executor.run, parse_strategy(long_yaml), None, token)
        wait_until(lambda: executor.last_pid != 0)
        token.cancel("changed my mind")
        with pytest.raises(TrainingCancelled, match="changed my mind"):
            running.result(timeout=scaled(30))
    wait_until(lambda: gone(executor.last_pid))


def test_a_killed_worker_fails_the_run_truthfully_and_leaves_no_process(
    sample_data_dir: Path, long_yaml: str, pool: SparePool
) -> None:
    executor = ProcessExecutor(sample_data_dir, device="cpu", pool=pool)
    watcher = EpochWatcher()
    with ThreadPoolExecutor(1) as threads:
        running = threads.submit(executor.run, parse_strategy(long_yaml), watcher)
        assert watcher.epoch.wait(60), "no epoch reported"
        os.kill(executor.last_pid, 9)
        with pytest.raises(WorkerDied, match=r"killed by SIGKILL .*memory.*no model"):
            running.result(timeout=scaled(30))
    assert gone(executor.last_pid)


def test_library_errors_arrive_as_themselves(
    tmp_path: Path, sample_data_dir: Path, tiny_strategy_yaml: str
) -> None:
    empty = tmp_path / "no-data"
    empty.mkdir()
    executor = ProcessExecutor(empty, device="cpu")
    with pytest.raises(DataError, match="EURUSD"):
        executor.run(parse_strategy(tiny_strategy_yaml))
    error = StrategyConfigError(["a: one", "b: two"])
    import pickle

    assert pickle.loads(pickle.dumps(error)).errors == ["a: one", "b: two"]


def test_two_workers_at_once_give_the_weights_of_two_in_a_row(
    sample_data_dir: Path, tiny_strategy_yaml: str, pool: SparePool
) -> None:
    """Warm workers (the services' default: forked from one forkserver, which imports the
    training stack once instead of four cold workers importing it each)."""
    import torch

    config = parse_strategy(tiny_strategy_yaml)
    assert pool.warm
    executor = ProcessExecutor(sample_data_dir, device="cpu", pool=pool)
    sequential = [executor.run(config) for _ in range(2)]
    with ThreadPoolExecutor(2) as threads:
        parallel = list(threads.map(lambda _: executor.run(config), range(2)))
    for result in [*sequential[1:], *parallel]:
        for name, tensor in sequential[0].bundle.weights.items():
            assert torch.equal(result.bundle.weights[name], tensor), name


def test_spares_are_started_ahead_and_stopped_on_close() -> None:
    pool = SparePool(threads=1, spares=1, forkserver=False)
    pool.refill()
    spare = pool.take()
    pids = [spare.pid]
    pool.refill()  # the next spare
    pids.append(pool._idle[0].pid)
    spare.stop()
    pool.close()
    for pid in pids:
        wait_until(lambda pid=pid: gone(pid))  # type: ignore[misc]


def test_thread_budget_shares_the_cpus() -> None:
    cpus = available_cpus()
    assert thread_budget(3, 1) == 3  # an operator's number wins
    assert thread_budget(0, 1) == cpus
    assert thread_budget(0, cpus) == 1
    assert thread_budget(0, cpus * 4) == 1  # never zero


def test_a_spare_starts_once_the_pool_is_idle_and_not_after_close(
    sample_data_dir: Path, tiny_strategy_yaml: str
) -> None:
    config = parse_strategy(tiny_strategy_yaml)
    pool = SparePool(threads=1, spares=1, delay_s=0.2, forkserver=False)
    try:
        ProcessExecutor(sample_data_dir, device="cpu", pool=pool).run(config)
        wait_until(lambda: len(pool._idle) == 1)  # started after the idle delay
        spare = pool._idle[0]
    finally:
        pool.close()
    wait_until(lambda: gone(spare.pid))

    closing = SparePool(threads=1, spares=1, delay_s=0.5, forkserver=False)
    ProcessExecutor(sample_data_dir, device="cpu", pool=closing).run(config)
    closing.close()  # the service stops right after its run: no spare is started
    timer = closing._timer
    assert timer is not None
    timer.join(10)  # the cancelled timer's thread ends without firing
    assert not timer.is_alive()
    assert closing._idle == []


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_warm_workers_are_forked_from_one_forkserver_and_train_like_cold_ones(
    sample_data_dir: Path, tiny_strategy_yaml: str, pool: SparePool
) -> None:
    import torch

    config = parse_strategy(tiny_strategy_yaml)
    cold = ProcessExecutor(sample_data_dir, device="cpu", pool=SparePool(threads=1, spares=0))
    assert pool.warm and not cold.pool.warm
    expected = cold.run(config)
    warm = ProcessExecutor(sample_data_dir, device="cpu", pool=pool)
    seen = []
    for _ in range(2):
        watcher = EpochWatcher()
        result = warm.run(config, watcher)
        server = pool._server
        assert server is not None and server.alive()
        seen.append((warm.last_pid, server.pid))
        assert watcher.epoch.is_set()
        for name, tensor in expected.bundle.weights.items():
            assert torch.equal(result.bundle.weights[name], tensor), name
        wait_until(lambda: gone(warm.last_pid))  # reaped by the forkserver
    (first, server_a), (second, server_b) = seen
    assert first != second and server_a == server_b  # one forkserver, a process per run
    pool.close()
    wait_until(lambda: gone(server_a))


def test_a_warm_worker_forks_while_a_run_is_cancelled_before_the_forkserver_is_ready(
    sample_data_dir: Path, tiny_strategy_yaml: str
) -> None:
    pool = SparePool(threads=1, spares=1)
    try:
        token = CancellationToken()
        token.cancel("not now")
        executor = ProcessExecutor(sample_data_dir, device="cpu", pool=pool)
        with pytest.raises(TrainingCancelled, match="not now"):
            executor.run(parse_strategy(tiny_strategy_yaml), None, token)
        pool.refill()  # the forkserver starts; a run cancelled while it imports stops at once
        server = pool._server
        assert server is not None
        late = CancellationToken()
        threading.Timer(0.2, late.cancel, args=("changed my mind",)).start()
        with pytest.raises(TrainingCancelled, match="changed my mind"):
            pool.take(late)
        assert pool._active == 0
    finally:
        pool.close()


def test_a_dead_forkserver_is_replaced_and_its_runs_fall_back_to_cold_workers(
    sample_data_dir: Path, tiny_strategy_yaml: str, pool: SparePool
) -> None:
    config = parse_strategy(tiny_strategy_yaml)
    executor = ProcessExecutor(sample_data_dir, device="cpu", pool=pool)
    executor.run(config)
    server = pool._server
    assert server is not None
    os.kill(server.pid, 9)
    wait_until(lambda: not server.alive())
    executor.run(config)  # a new forkserver, started for this run
    assert pool._server is not None and pool._server.pid != server.pid
    assert parent(executor.last_pid) == pool._server.pid
