"""Bad strategies for the service tests, and a health probe that runs during a call.

``BAD_STRATEGIES`` are the inputs of issue 8 (alias bomb, 6.7 MiB text, 2,000-deep
nesting, huge work, odd YAML); each must be refused with the status and the field path
given here, within a second. ``during`` runs a call while a ``grpc.health.v1`` Check loop
measures how long the server takes to answer meanwhile.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.timing import scaled

INVALID = grpc.StatusCode.INVALID_ARGUMENT
TOO_LARGE = grpc.StatusCode.RESOURCE_EXHAUSTED
Edit = Callable[[str], str]


def alias_bomb() -> str:
    """Nine levels of nine-fold aliases (387 million strings once expanded), 700 bytes."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def _sub(old: str, new: str) -> Edit:
    def edit(text: str) -> str:
        assert old in text
        return text.replace(old, new, 1)

    return edit


# id -> (edit of the tiny strategy, status, what the message must contain)
BAD_STRATEGIES: dict[str, tuple[Edit, grpc.StatusCode, str]] = {
    "alias_bomb": (
        lambda t: t.replace("period: 14", "period: *l8") + alias_bomb(),
        INVALID,
        "indicators[0].period: YAML aliases are not allowed (*l8) (line 9, column 13)",
    ),
    "text_6_7_mib": (
        lambda t: t + "deployment: " + "word " * (int(6.7 * 2**20) // 5) + "\n",
        TOO_LARGE,
        "strategy_yaml: the strategy text is too large: at most 262144 bytes",
    ),
    "nested_2000": (
        lambda t: t + "deployment: " + "[" * 2000 + "]" * 2000 + "\n",
        INVALID,
        "nested more than 32 levels deep",
    ),
    "epochs_1e9": (
        _sub("epochs: 4", "epochs: 1000000000"),
        INVALID,
        "model.training.epochs: at most 10000",
    ),
    "layers_100000": (
        _sub("hidden_layers: [16, 8]", "hidden_layers: [100000, 100000]"),
        INVALID,
        "model.architecture.hidden_layers[0]: at most 8192 units, got 100000",
    ),
    "layers_1000": (
        _sub("hidden_layers: [16, 8]", f"hidden_layers: [{', '.join(['4096'] * 1000)}]"),
        INVALID,
        "model.architecture.hidden_layers: at most 16 layers, got 1000",
    ),
    "lookback_1e7": (
        _sub("lookback_periods: 1", "lookback_periods: 10000000"),
        INVALID,
        "model.features.lookback_periods: at most 1000, got 10000000",
    ),
    "batch_1e12": (
        _sub("batch_size: 64", "batch_size: 1000000000000"),
        INVALID,
        "model.training.batch_size: at most 65536",
    ),
    "epochs_1e400": (_sub("epochs: 4", "epochs: 1e400"), INVALID, "model.training.epochs: must be"),
    "period_huge": (
        _sub("period: 14", "period: 99999999999999999999999"),
        INVALID,
        "rsi.period must be <= 100000",
    ),
    "two_documents": (lambda t: t + "---\nname: other\n", INVALID, "one YAML document"),
    "not_a_mapping": (lambda t: "- a\n- b\n", INVALID, "must be a mapping"),
    "python_tag": (
        _sub("period: 14", "period: !!python/object/apply:os.system ['true']"),
        INVALID,
        "indicators[0].period: YAML tag tag:yaml.org,2002:python/object/apply:os.system",
    ),
    "binary_tag": (_sub("name: tiny_rsi", "name: !!binary aGVsbG8="), INVALID, "name: YAML tag"),
}


def slow_but_small(tiny: str) -> str:
    """~45 KB of valid YAML (~0.1 s of parsing: dozens of health Checks fit in it, a blocked
    event loop answers one or two) with a work bound exceeded."""
    notes = "deployment:\n" + "".join(f"  - {i}\n" for i in range(5_000))
    return tiny.replace("epochs: 4", "epochs: 20000") + notes


@dataclass
class Probe:
    """What happened during one call: its outcome and the health latencies meanwhile."""

    code: grpc.StatusCode | None = None
    details: str = ""
    elapsed_s: float = 0.0
    health_s: list[float] = field(default_factory=list)

    @property
    def worst_health_s(self) -> float:
        return max(self.health_s)

    @property
    def median_health_s(self) -> float:
        return statistics.median(self.health_s)


async def during(channel: grpc.aio.Channel, call: Callable[[], Awaitable[object]]) -> Probe:
    """Run ``call`` while health Checks go to the same server back to back."""
    health = health_pb2_grpc.HealthStub(channel)
    probe = Probe()
    await health.Check(health_pb2.HealthCheckRequest(), timeout=scaled(5))  # connected and warm
    done = asyncio.Event()

    async def check_health() -> None:
        while True:  # at least one Check, however fast the call is
            started = time.perf_counter()
            await health.Check(health_pb2.HealthCheckRequest(), timeout=scaled(5))
            probe.health_s.append(time.perf_counter() - started)
            if done.is_set():
                return

    async def run_call() -> None:
        started = time.perf_counter()
        try:
            await call()
        except grpc.aio.AioRpcError as exc:
            probe.code, probe.details = exc.code(), exc.details() or ""
        finally:
            probe.elapsed_s = time.perf_counter() - started
            done.set()

    await asyncio.gather(check_health(), run_call())
    return probe


def raw_string_field(number: int, payload: bytes) -> bytes:
    """A protobuf message holding one length-delimited field (any bytes, even bad UTF-8)."""
    size, varint = len(payload), b""
    while True:
        low, size = size & 0x7F, size >> 7
        varint += bytes([low | (0x80 if size else 0)])
        if not size:
            break
    return bytes([(number << 3) | 2]) + varint + payload
