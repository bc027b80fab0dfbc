#!/usr/bin/env python3
"""Model delivery throughput: SubmitResults vs a raw gRPC byte stream, the verified floor and
gzip+base64+JSON.

For bundles of 1, 10 and 100 MB of float32-like weights, the methods alternate in rounds
(the order rotates every round) on one receiver, and each round's time is compared with the
raw byte stream's time in the same round (ratio = raw time / method time, so 1.0 is the
ceiling); ratios are reported as median [min..max] (n):

* ``SubmitResults`` as the host sends it (``send_results`` on a channel; codec chosen
  automatically, and raw forced, with the hash known as the host's spool records it),
  registered as the backend registers it (``add_backend_servicer``) and received by
  ``receive_results`` into a temporary file (decoded, SHA-256 verified);
* a raw gRPC byte stream of the same size in messages of the same size as the chunks
  (``DEFAULT_CHUNK_SIZE``), discarded on arrival: the ceiling for gRPC Python here. It runs on
  the same server (the project's ``build_server``: same options, interceptor chain and
  ``DEFAULT_MAX_MESSAGE_BYTES`` limits), over the same plaintext loopback channel;
* the verified floor: the bundle file read in chunks and sent as a bare stream, each message
  hashed (SHA-256) and written to a file on arrival: what any verified delivery must do.
  ``SubmitResults`` with the automatic codec (what the host sends) is compared with it,
  target >= 0.9 (floor time / SubmitResults time);
* the original plan's approach: gzip, base64, one JSON body in a single unary call (on a
  second server whose message limit admits one huge message).

The receiver runs in a subprocess so that its peak RSS (VmHWM, reset before each transfer via
/proc/self/clear_refs) can be reported above its idle RSS; a 256 MB bundle checks that the
receiver's memory does not grow with the bundle (target: under 64 MiB above idle).

Usage: python benchmarks/bench_transfer.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gzip
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import grpc
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT / "src"), str(REPO_ROOT / "benchmarks")]

from ratios import collect  # noqa: E402

from ktrdr.backend.registration import add_backend_servicer  # noqa: E402
from ktrdr.service.server import build_server  # noqa: E402
from ktrdr.training.v1 import backend_pb2 as pb  # noqa: E402
from ktrdr.training.v1 import backend_pb2_grpc as pb_grpc  # noqa: E402
from ktrdr.transfer import (  # noqa: E402
    DEFAULT_CHUNK_SIZE,
    DEFAULT_MAX_MESSAGE_BYTES,
    Codec,
    TransferError,
    grpc_options,
    receive_results,
    send_results,
    sha256_file,
)

MB = 1_000_000
MiB = 1 << 20
BIG_MESSAGE = 1 << 30  # the JSON approach needs one huge message
RAW_METHOD = "/bench.Raw/Stream"
FLOOR_METHOD = "/bench.Floor/Stream"
JSON_METHOD = "/bench.Json/Submit"
RESET_METHOD = "/bench.Memory/Reset"
PEAK_METHOD = "/bench.Memory/Peak"


# --------------------------------------------------------------------------- receiver


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


class _Receiver(pb_grpc.BackendServicer):
    def __init__(self, incoming: Path) -> None:
        self.incoming = incoming

    async def SubmitResults(self, request_iterator, context):  # type: ignore[override]
        try:
            received = await receive_results(
                request_iterator, tmp_dir=self.incoming, max_raw_bytes=1 << 31
            )
        except TransferError as error:
            await context.abort(error.code, error.message)
        received.path.unlink()
        return pb.SubmitResultsResponse(sha256=received.sha256, raw_size_bytes=received.raw_size)


async def _raw_stream(request_iterator, context) -> bytes:
    total = 0
    async for message in request_iterator:
        total += len(message)
    return str(total).encode()


async def _floor_stream(request_iterator, context) -> bytes:
    """The verified floor: each message hashed and written to a file as it arrives."""
    sha = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=context_dir, delete=True) as f:
        async for message in request_iterator:
            sha.update(message)
            f.write(message)
        f.flush()
    return sha.hexdigest().encode()


async def _json_submit(request: bytes, context) -> bytes:
    body = json.loads(request)
    bundle = gzip.decompress(base64.b64decode(body["model_b64"]))
    with tempfile.NamedTemporaryFile(dir=context_dir, delete=True) as f:
        f.write(bundle)
    return str(len(bundle)).encode()


async def _reset(request: bytes, context) -> bytes:
    Path("/proc/self/clear_refs").write_text("5")
    return f"{_status_kib('VmRSS')} {time.process_time()}".encode()


async def _peak(request: bytes, context) -> bytes:
    return f"{_status_kib('VmHWM')} {time.process_time()}".encode()


context_dir = Path(tempfile.gettempdir())


async def serve() -> None:
    global context_dir
    incoming = Path(tempfile.mkdtemp(prefix="bench-incoming-"))
    context_dir = incoming

    def register(server: grpc.aio.Server) -> None:
        add_backend_servicer(_Receiver(incoming), server)  # as the backend registers it
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "bench.Raw", {"Stream": grpc.stream_unary_rpc_method_handler(_raw_stream)}
                ),
                grpc.method_handlers_generic_handler(
                    "bench.Floor",
                    {"Stream": grpc.stream_unary_rpc_method_handler(_floor_stream)},
                ),
                grpc.method_handlers_generic_handler(
                    "bench.Memory",
                    {
                        "Reset": grpc.unary_unary_rpc_method_handler(_reset),
                        "Peak": grpc.unary_unary_rpc_method_handler(_peak),
                    },
                ),
            )
        )

    # SubmitResults and the raw stream: one server, as the backend builds its own.
    server, _ = build_server(
        register,
        ["ktrdr.training.v1.Backend"],
        max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES,
        service="backend",
    )
    port = server.add_insecure_port("127.0.0.1:0")
    # The JSON approach needs one huge message: a server of its own.
    json_server = grpc.aio.server(options=grpc_options(BIG_MESSAGE))
    json_server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "bench.Json", {"Submit": grpc.unary_unary_rpc_method_handler(_json_submit)}
            ),
        )
    )
    json_port = json_server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await json_server.start()
    print(port, json_port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
    await server.stop(grace=None)
    await json_server.stop(grace=None)


# --------------------------------------------------------------------------- client


@dataclass
class Result:
    size: int
    method: str
    seconds: float
    peak_kib: int  # receiver memory above idle
    cpu_s: float  # CPU time of receiver and sender (all their threads) during the transfer

    @property
    def mb_s(self) -> float:
        return self.size / MB / self.seconds


def make_bundle(path: Path, size: int) -> None:
    rng = np.random.default_rng(size)
    with open(path, "wb") as f:
        f.write(json.dumps({"metadata": "x" * 2000}).encode())
        written = 2000
        while written < size:
            n = min(16 * MiB, size - written)
            f.write(rng.standard_normal(n // 4 + 1, dtype=np.float32).tobytes()[:n])
            written += n


class Client:
    def __init__(self, port: int, json_port: int) -> None:
        # The host's channel options: the same limits on both sides as in production.
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=grpc_options())
        self.json_channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{json_port}", options=grpc_options(BIG_MESSAGE)
        )
        self.raw = self.channel.stream_unary(RAW_METHOD)
        self.floor = self.channel.stream_unary(FLOOR_METHOD)
        self.json = self.json_channel.unary_unary(JSON_METHOD)
        self.reset = self.channel.unary_unary(RESET_METHOD)
        self.peak = self.channel.unary_unary(PEAK_METHOD)

    async def measure(self, size: int, method: str, coro_factory) -> Result:
        idle, receiver_cpu = (float(v) for v in (await self.reset(b"", timeout=10)).split())
        sender_cpu = time.process_time()
        start = time.perf_counter()
        await coro_factory()
        seconds = time.perf_counter() - start
        sender_cpu = time.process_time() - sender_cpu
        peak, receiver_end = (float(v) for v in (await self.peak(b"", timeout=10)).split())
        cpu = receiver_end - receiver_cpu + sender_cpu
        return Result(size, method, seconds, max(0, int(peak - idle)), cpu)

    async def submit(self, path: Path, codec: Codec | None, sha256: str | None = None) -> None:
        await send_results(
            self.channel,  # as the host sends: messages serialized by the transfer code
            path,
            session_id="bench",
            strategy_name="bench",
            codec=codec,
            sha256=sha256,
            timeout_s=600,
        )

    async def raw_stream(self, size: int) -> None:
        chunk = os.urandom(DEFAULT_CHUNK_SIZE)

        # A plain iterator, as send_results gives gRPC for a raw bundle (an async generator
        # costs gRPC more per message).
        def messages() -> Iterator[bytes]:
            left = size
            while left > 0:
                yield chunk if left >= len(chunk) else chunk[:left]
                left -= len(chunk)

        await self.raw(messages(), timeout=600)

    async def floor_stream(self, path: Path) -> None:
        """The bundle's bytes read in chunks and sent bare; the receiver hashes and writes."""

        def messages() -> Iterator[bytes]:
            with open(path, "rb") as f:
                while chunk := f.read(DEFAULT_CHUNK_SIZE):
                    yield chunk

        await self.floor(messages(), timeout=600)

    async def gzip_base64_json(self, path: Path) -> None:
        body = json.dumps(
            {
                "session_id": "bench",
                "model_b64": base64.b64encode(gzip.compress(path.read_bytes())).decode(),
            }
        ).encode()
        await self.json(body, timeout=600)


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Client]:
    """A fresh receiver subprocess and a client connected to it."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    port, json_port = (int(p) for p in proc.stdout.readline().split())
    client = Client(port, json_port)
    try:
        yield client
    finally:
        await client.channel.close()
        await client.json_channel.close()
        proc.stdin.close()
        proc.wait(timeout=30)


RAW = "raw gRPC stream (ceiling)"
FLOOR = "verified floor (stream+SHA+write)"
AUTO = "SubmitResults auto, hash known"
# The figure with a target: what the host does with a spooled bundle (hash recorded).
HEADLINE = "SubmitResults raw, hash known"


async def run(quick: bool, rounds: int | None) -> None:
    sizes = [1 * MB, 10 * MB] if quick else [1 * MB, 10 * MB, 100 * MB]
    memory_check = 64 * MB if quick else 256 * MB
    default_rounds = {1 * MB: 9, 10 * MB: 9, 100 * MB: 11}
    results: list[Result] = []
    memory: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as tmp:
        async with receiver() as client:
            for size in sizes:
                path = Path(tmp) / f"bundle-{size}.tar"
                make_bundle(path, size)
                sha256 = sha256_file(path)
                candidates = {
                    RAW: partial(client.raw_stream, size),
                    FLOOR: partial(client.floor_stream, path),
                    AUTO: partial(client.submit, path, None, sha256),
                    "SubmitResults zstd, hash known": partial(
                        client.submit, path, Codec.ZSTD, sha256
                    ),
                    "SubmitResults raw codec": partial(client.submit, path, Codec.RAW),
                    HEADLINE: partial(client.submit, path, Codec.RAW, sha256),
                }
                for factory in candidates.values():  # warm-up, not measured
                    await factory()
                n = rounds or default_rounds[size]
                names = list(candidates)
                for i in range(n):
                    # Rotate the order so that no method always runs first or last.
                    for method in names[i % len(names) :] + names[: i % len(names)]:
                        results.append(await client.measure(size, method, candidates[method]))
                # The JSON approach is slow: once per size (it is not part of a ratio).
                json_factory = lambda p=path: client.gzip_base64_json(p)  # noqa: E731
                results.append(await client.measure(size, "gzip+base64+JSON unary", json_factory))
                path.unlink()
        # Memory: a fresh receiver per codec, warmed up with a small bundle first.
        small = Path(tmp) / "bundle-warmup.tar"
        make_bundle(small, 1 * MB)
        path = Path(tmp) / "bundle-memory.tar"
        make_bundle(path, memory_check)
        for codec in (None, Codec.RAW):
            async with receiver() as client:
                await client.submit(small, codec)
                memory.append(
                    await client.measure(
                        memory_check,
                        f"SubmitResults {codec or 'auto'}",
                        lambda c=codec: client.submit(path, c),
                    )
                )
    report(results, memory)


def report(results: list[Result], memory: list[Result]) -> None:
    print(
        f"{'size':>7}  {'method':<30} {'median s':>8} {'MB/s':>8} "
        f"{'raw time / method time':>28} {'recv peak MiB':>13}"
    )
    for size in sorted({r.size for r in results}):
        rows = [r for r in results if r.size == size]
        raw = [r for r in rows if r.method == RAW]
        for method in dict.fromkeys(r.method for r in rows):
            runs = [r for r in rows if r.method == method]
            seconds = statistics.median(r.seconds for r in runs)
            if len(runs) == len(raw):  # one run per round, paired with that round's raw run
                ratios = [a.seconds / b.seconds for a, b in zip(raw, runs, strict=True)]
                ratio = (
                    f"{statistics.median(ratios):.2f} [{min(ratios):.2f}..{max(ratios):.2f}] "
                    f"({len(ratios)})"
                )
            else:
                ratios = []
                ratio = f"{statistics.median(r.seconds for r in raw) / seconds:.2f} (1 run)"
            peak = max(r.peak_kib for r in runs)
            print(
                f"{size // MB:>5}MB  {method:<30} {seconds:>8.3f} {size / MB / seconds:>8.1f} "
                f"{ratio:>28} {peak / 1024:>13.1f}"
            )
            floor = [r for r in rows if r.method == FLOOR]
            if method == AUTO and len(runs) == len(floor):
                figure = f"SubmitResults auto (float32 weights, hash known), {size // MB} MB"
                baseline = "verified floor: bare stream + SHA-256 + file write"
                collect(
                    figure,
                    baseline,
                    [f.seconds / a.seconds for f, a in zip(floor, runs, strict=True)],
                    ">= 0.9" if size >= 10 * MB else "-",
                )
                cpu = [f.cpu_s / a.cpu_s for f, a in zip(floor, runs, strict=True) if a.cpu_s]
                if cpu:
                    collect(f"{figure}, CPU time", f"{baseline}, CPU time", cpu, "-")
            if method == HEADLINE and ratios:
                baseline = (
                    f"raw gRPC byte stream ({DEFAULT_CHUNK_SIZE // MiB} MiB messages, same "
                    "server, plaintext loopback, same limits)"
                )
                figure = f"SubmitResults raw (hash known), {size // MB} MB"
                collect(figure, baseline, ratios, ">= 0.6" if size >= 100 * MB else "-")
                # CPU seconds (sender + receiver) tell the cost apart from a busy machine's
                # scheduling: the raw stream's CPU / SubmitResults's, round by round.
                cpu = [a.cpu_s / b.cpu_s for a, b in zip(raw, runs, strict=True) if b.cpu_s > 0]
                if cpu:
                    collect(f"{figure}, CPU time", f"{baseline}, CPU time", cpu, "-")
    print()
    for r in memory:
        verdict = "OK" if r.peak_kib < 64 * 1024 else "OVER"
        print(
            f"memory check {r.size // MB} MB, {r.method}: receiver peak {r.peak_kib / 1024:.1f} "
            f"MiB above idle ({verdict}, target < 64 MiB); {r.mb_s:.0f} MB/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 10 MB, 64 MB memory check")
    parser.add_argument("--rounds", type=int, help="rounds per size (default 9, 9, 11)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(serve() if args.serve else run(args.quick, args.rounds))


if __name__ == "__main__":
    main()
