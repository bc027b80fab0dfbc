"""MLflow tracking benchmark (part of ``make bench``): an unreachable tracking server must not
slow a training.

Four real backend processes (local mode, the tiny strategy) differ only in
``KTRDR_BACKEND_MLFLOW_TRACKING_URI``:

- off: no tracking (B, the baseline);
- refused: ``http://127.0.0.1:<port>`` where nothing listens (each attempt fails at once);
- hanging: ``http://127.0.0.1:<port>`` of a loopback socket that accepts and never answers
  (each attempt waits for MLflow's HTTP timeout: the worse case);
- sqlite: a working ``sqlite:///`` store (the tracker logs every run: import, plot, artifacts).

Each round trains once on each, in a rotating order, and times CreateTraining -> COMPLETED from
the client; the ratios are each variant's time over the ``off`` time of the same round.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from ratios import report  # noqa: E402

from ktrdr.training.v1 import backend_pb2 as pb  # noqa: E402
from ktrdr.training.v1 import backend_pb2_grpc, common_pb2  # noqa: E402
from tests.support.backend import refused_address  # noqa: E402
from tests.support.processes import Service, channel_to, start_backend  # noqa: E402
from tests.support.strategies import TINY_STRATEGY_YAML  # noqa: E402

DATA = ROOT / "data" / "samples"
URI_ENV = "KTRDR_BACKEND_MLFLOW_TRACKING_URI"
# A backend starts a spare worker 2 s after a run, which imports for ~3 s (bench_backend.py):
# the next run, on any of the backends, starts after that.
SETTLE_S = 6.0


class SilentServer:
    """A loopback TCP server that accepts connections and never reads or answers."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = int(self._listener.getsockname()[1])
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            self._held.append(conn)

    def close(self) -> None:
        """Close the listener and every held connection (a waiting client sees a reset)."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(5)
        for conn in self._held:
            conn.close()


@contextlib.contextmanager
def env(name: str, value: str) -> Iterator[None]:
    """``name=value`` in this process's environment (start_backend passes it on)."""
    old = os.environ.get(name)
    if value:
        os.environ[name] = value
    else:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def train_once(stub: backend_pb2_grpc.BackendStub, yaml_text: str) -> float:
    """Seconds from CreateTraining to COMPLETED seen by a WatchOperation client."""
    start = time.perf_counter()
    op = stub.CreateTraining(
        pb.CreateTrainingRequest(
            strategy_yaml=yaml_text,
            execution_mode=pb.EXECUTION_MODE_LOCAL,
            overrides=common_pb2.TrainingOverrides(device="cpu", seed=7),
        ),
        timeout=10,
    ).operation
    for message in stub.WatchOperation(pb.WatchOperationRequest(operation_id=op.operation_id)):
        last = message
    elapsed = time.perf_counter() - start
    assert last.status == pb.OPERATION_STATUS_COMPLETED, last
    return elapsed


def waiting(work: Path) -> int:
    """Entries in a backend's MLflow spool (runs not logged yet)."""
    return len(list((work / "mlflow-pending").glob("*.json")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=4, help="rounds (one run per variant)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="3 rounds, 10 epochs")
    args, _ = parser.parse_known_args()
    repeats, epochs = (3, 10) if args.quick else (args.repeats, args.epochs)
    logging.getLogger("ktrdr").setLevel(logging.ERROR)
    yaml_text = TINY_STRATEGY_YAML.replace("epochs: 4", f"epochs: {epochs}")
    silent = SilentServer()
    backends: dict[str, Service] = {}
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        uris = {
            "off": "",
            "refused": f"http://{refused_address()}",
            "hanging": f"http://127.0.0.1:{silent.port}",
            "sqlite": f"sqlite:///{work / 'mlflow' / 'mlflow.db'}",
        }
        (work / "mlflow").mkdir()
        try:
            for name, uri in uris.items():
                with env(URI_ENV, uri):
                    backends[name] = start_backend(work / name, DATA, [])
            channels = {name: channel_to(b.address) for name, b in backends.items()}
            stubs = {name: backend_pb2_grpc.BackendStub(c) for name, c in channels.items()}
            names = list(uris)
            for name in names:  # warm-up: first-call costs, the trackers' first attempts
                train_once(stubs[name], yaml_text)
                time.sleep(SETTLE_S)
            for round_ in range(repeats):
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for name in order:
                    times.setdefault(name, []).append(train_once(stubs[name], yaml_text))
                    time.sleep(SETTLE_S)
            for channel in channels.values():
                channel.close()
        finally:
            silent.close()  # first: the hanging backend's tracker call ends, its stop is quick
            for service in backends.values():
                service.stop()
        spooled = {name: waiting(work / name) for name in uris if name != "off"}
    base = times["off"]
    print(
        f"CreateTraining -> COMPLETED, local mode, {epochs} epochs, {repeats} rounds; "
        f"off median {sorted(base)[len(base) // 2]:.2f} s; runs still spooled at the end "
        + ", ".join(f"{n} {c}" for n, c in spooled.items())
    )
    for name, values in times.items():
        print(f"  {name:8} " + " ".join(f"{v:.2f}" for v in values) + " s (by round)")
    what = {
        "refused": "tracking URI refusing connections",
        "hanging": "tracking URI accepting, never answering",
        "sqlite": "tracking to a working SQLite store",
    }
    for name, figure in what.items():
        ratios = [a / b for a, b in zip(times[name], base, strict=True)]
        report(f"training with {figure}", "tracking off", ratios, "<= 1.05")
    return 0


if __name__ == "__main__":
    sys.exit(main())
