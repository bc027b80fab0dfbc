"""Listings against store size (part of ``make bench``): a ListModels page of 20 and a
ListStrategies at a large store against the same at 1,000 models, alternated in one run.

Both stores are written as the backend writes them (``Store.insert_operation``,
``mark_running``, ``complete_with_model``, ``ModelRegistry.set_operation_tags``, aliases),
50 strategies, every model with a ``test_accuracy``, the tag ``all`` and one in twenty
``rare``. Timed is what the RPC runs in its worker thread (``ModelCatalog.list_models``, the
strategies query with the strategies directory), not the gRPC transport, which is the same
at every size. Each figure is the median of per-round ratios (large / small), a round being
``--calls`` calls of each.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from ratios import report  # noqa: E402

from ktrdr.backend.conversions import strategies_to_proto  # noqa: E402
from ktrdr.backend.database import Database  # noqa: E402
from ktrdr.backend.models import ModelCatalog  # noqa: E402
from ktrdr.backend.store import ModelRecord, OperationRecord, Store, now_us  # noqa: E402
from ktrdr.backend.strategies import strategy_files  # noqa: E402
from ktrdr.service.convert import simple_event  # noqa: E402
from ktrdr.training.progress import ProgressKind  # noqa: E402
from ktrdr.training.v1 import backend_pb2 as pb  # noqa: E402
from ktrdr.training.v1 import common_pb2  # noqa: E402

STRATEGIES = 50
PAGE = 20


def build(directory: Path, models: int) -> ModelCatalog:
    """A store of ``models`` models registered the way the backend registers them."""
    # Durability off (the same statements, without an fsync per commit): the listings timed
    # below only read.
    store = Store(Database(directory / "backend.db", synchronous="OFF"))
    catalog = ModelCatalog(store, directory / "models", directory / "work")
    rng = random.Random(models)
    event = simple_event(ProgressKind.COMPLETED, "done")
    for i in range(models):
        strategy, version = f"strategy_{i % STRATEGIES:02d}", i // STRATEGIES + 1
        op_id = uuid.uuid4().hex
        store.insert_operation(
            OperationRecord(
                id=op_id,
                status=pb.OPERATION_STATUS_PENDING,
                strategy_name=strategy,
                strategy_yaml="name: x\n" * 20,
                overrides=common_pb2.TrainingOverrides(seed=i),
                requested_mode=pb.EXECUTION_MODE_LOCAL,
                mode=pb.EXECUTION_MODE_LOCAL,
                mode_reason="local: default",
                host_address="",
                require_gpu=False,
                created_us=now_us(),
            )
        )
        catalog.registry.set_operation_tags(op_id, ["all", "rare"] if i % 20 == 0 else ["all"])
        store.mark_running(op_id)
        metrics = {"test_accuracy": rng.random(), "test_loss": rng.random()}
        result = common_pb2.ResultSummary(metrics=metrics, device="cpu", duration_s=3.0)
        model = ModelRecord(
            strategy, version, f"{strategy}/v{version}", now_us(), op_id, "ab" * 32, metrics
        )
        store.complete_with_model(op_id, event, result, model)
    for s in range(STRATEGIES):
        catalog.registry.set_alias(f"strategy_{s:02d}", "prod", 1)
    catalog.list_models(pb.ListModelsRequest(page_size=1))  # tags copied, as on a first call
    return catalog


def timed(work: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        work()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20, help="calls per timing")
    parser.add_argument("--quick", action="store_true", help="20,000 models, 7 rounds")
    args, _ = parser.parse_known_args()
    if args.quick:
        args.large, args.rounds = min(args.large, 20_000), min(args.rounds, 7)
    with tempfile.TemporaryDirectory(prefix="bench-listing-") as tmp:
        started = time.perf_counter()
        small = build(Path(tmp) / "small", args.small)
        large = build(Path(tmp) / "large", args.large)
        print(
            f"stores of {args.small} and {args.large} models ({STRATEGIES} strategies) "
            f"written in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        deep: dict[int, str] = {}
        for catalog in (small, large):  # the token of page 10 of the metric order
            request = pb.ListModelsRequest(order_by="test_accuracy", page_size=PAGE)
            for _ in range(10):
                request.page_token = catalog.list_models(request).next_page_token
            deep[id(catalog)] = request.page_token
        strategies_dir = Path(tmp) / "strategies"

        def figures(catalog: ModelCatalog) -> dict[str, Callable[[], object]]:
            store = catalog.registry.store
            return {
                "ListModels page of 20": lambda: catalog.list_models(
                    pb.ListModelsRequest(page_size=PAGE)
                ),
                "ListModels page of 20 by test_accuracy, highest first": lambda: (
                    catalog.list_models(
                        pb.ListModelsRequest(
                            order_by="test_accuracy", descending=True, page_size=PAGE
                        )
                    )
                ),
                "ListModels 11th page of 20 by test_accuracy": lambda: catalog.list_models(
                    pb.ListModelsRequest(
                        order_by="test_accuracy", page_size=PAGE, page_token=deep[id(catalog)]
                    )
                ),
                "ListModels page of 20 tagged 'rare'": lambda: catalog.list_models(
                    pb.ListModelsRequest(tag="rare", page_size=PAGE)
                ),
                "ListStrategies": lambda: strategies_to_proto(
                    store.strategies(), list(strategy_files(strategies_dir))
                ),
            }

        a_side, b_side = figures(large), figures(small)
        for name in a_side:
            ratios, a_ms, b_ms = [], [], []
            for _ in range(args.rounds):
                a = timed(a_side[name], args.calls)
                b = timed(b_side[name], args.calls)
                ratios.append(a / b)
                a_ms.append(a / args.calls * 1e3)
                b_ms.append(b / args.calls * 1e3)
            a_ms.sort()
            b_ms.sort()
            print(
                f"{name}: {a_ms[len(a_ms) // 2]:.2f} ms at {args.large} models, "
                f"{b_ms[len(b_ms) // 2]:.2f} ms at {args.small} (medians)",
                flush=True,
            )
            report(
                f"{name} at {args.large // 1000}k models",
                f"at {args.small // 1000}k",
                ratios,
                "<= 2",
            )
        large.registry.store.close()
        small.registry.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
