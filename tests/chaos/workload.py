"""The soak's trainings: created at their planned moments, in local or host mode, whatever the
faults are doing. A refused creation is retried a few times (the backend may be restarting, or
its disk full), then counted as refused with its status code: a refusal is an answer, not a
lost operation. The operations themselves are judged at the end from the backend's own list
(``ListOperations``), which also holds any whose creation was answered with an error.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

import grpc

from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc, common_pb2
from tests.chaos.cluster import Cluster
from tests.chaos.schedule import Training
from tests.support.processes import channel_to
from tests.support.timing import scaled

STRATEGY_NAME = "chaos_rsi"
CREATE_ATTEMPTS = 4
MODES = {"local": pb.EXECUTION_MODE_LOCAL, "host": pb.EXECUTION_MODE_HOST}


def strategy_yaml(tiny_yaml: str) -> str:
    """The tests' tiny strategy under a name of its own (its models count from version 1)."""
    return tiny_yaml.replace("name: tiny_rsi", f"name: {STRATEGY_NAME}", 1)


@dataclass(frozen=True)
class Created:
    operation_id: str
    training: Training
    at_s: float
    mode: str  # where the backend placed it
    fallback: bool


class Workload(threading.Thread):
    def __init__(self, cluster: Cluster, plan: list[Training], yaml_text: str, start: float):
        super().__init__(name="chaos-workload", daemon=True)
        self.cluster = cluster
        self.plan = plan
        self.yaml_text = yaml_text
        self.start_time = start
        self.created: list[Created] = []
        self.refused: Counter[str] = Counter()  # creations given up, by the last status code
        self.retried: Counter[str] = Counter()  # creation attempts answered with an error
        self.refusal_examples: dict[str, str] = {}
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def now(self) -> float:
        return time.monotonic() - self.start_time

    def run(self) -> None:
        for training in self.plan:
            if self._halt.wait(max(0.0, training.at_s - self.now())):
                return
            self._create(training)

    def _create(self, training: Training) -> None:
        request = pb.CreateTrainingRequest(
            strategy_yaml=self.yaml_text,
            execution_mode=MODES[training.mode],
            overrides=common_pb2.TrainingOverrides(device="cpu", seed=training.seed),
        )
        code = ""
        for attempt in range(CREATE_ATTEMPTS):
            try:
                with channel_to(self.cluster.backend_address) as channel:
                    stub = backend_pb2_grpc.BackendStub(channel)
                    op = stub.CreateTraining(request, timeout=scaled(15)).operation
            except grpc.RpcError as exc:
                status = exc.code() if isinstance(exc, grpc.Call) else None
                code = status.name if status is not None else "ERROR"
                details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
                self.retried[code] += 1
                self.refusal_examples.setdefault(code, details or "")
                # the backend may be restarting or its disk full: try again a little later
                if self._halt.wait(1.0 + attempt):
                    break
                continue
            mode = "host" if op.mode == pb.EXECUTION_MODE_HOST else "local"
            self.created.append(Created(op.operation_id, training, self.now(), mode, op.fallback))
            print(
                f"[chaos] training at {self.now():6.1f}s: {op.operation_id} asked "
                f"{training.mode}, placed {mode}{' (fallback)' if op.fallback else ''}",
                flush=True,
            )
            return
        self.refused[code] += 1
        print(f"[chaos] training at {self.now():6.1f}s refused: {code}", flush=True)
