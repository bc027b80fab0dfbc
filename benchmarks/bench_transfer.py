#!/usr/bin/env python3
"""Model delivery throughput: SubmitResults vs a raw gRPC byte stream vs gzip+base64+JSON.

For bundles of 1, 10 and 100 MB of float32-like weights, in the same run:

* ``SubmitResults`` with the project's transfer code (codec chosen automatically, and raw
  forced), received by ``receive_results`` into a temporary file;
* a raw gRPC byte stream of the same size in 1 MiB messages, discarded on arrival (the
  ceiling for gRPC Python on this machine);
* the original plan's approach: gzip, base64, one JSON body in a single unary call.

The receiver runs in a subprocess so that its peak RSS (VmHWM, reset before each transfer via
/proc/self/clear_refs) can be reported above its idle RSS; a 256 MB bundle checks that the
receiver's memory does not grow with the bundle (target: under 64 MiB above idle).

Usage: python benchmarks/bench_transfer.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT / "src"), str(REPO_ROOT / "benchmarks")]

from ratios import collect  # noqa: E402

from ktrdr.training.v1 import backend_pb2 as pb  # noqa: E402
from ktrdr.training.v1 import backend_pb2_grpc as pb_grpc  # noqa: E402
from ktrdr.transfer import (  # noqa: E402
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


async def _json_submit(request: bytes, context) -> bytes:
    body = json.loads(request)
    bundle = gzip.decompress(base64.b64decode(body["model_b64"]))
    with tempfile.NamedTemporaryFile(dir=context_dir, delete=True) as f:
        f.write(bundle)
    return str(len(bundle)).encode()


async def _reset(request: bytes, context) -> bytes:
    Path("/proc/self/clear_refs").write_text("5")
    return str(_status_kib("VmRSS")).encode()


async def _peak(request: bytes, context) -> bytes:
    return str(_status_kib("VmHWM")).encode()


context_dir = Path(tempfile.gettempdir())


async def serve() -> None:
    global context_dir
    incoming = Path(tempfile.mkdtemp(prefix="bench-incoming-"))
    context_dir = incoming
    server = grpc.aio.server(options=grpc_options(BIG_MESSAGE))
    pb_grpc.add_BackendServicer_to_server(_Receiver(incoming), server)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "bench.Raw", {"Stream": grpc.stream_unary_rpc_method_handler(_raw_stream)}
            ),
            grpc.method_handlers_generic_handler(
                "bench.Json", {"Submit": grpc.unary_unary_rpc_method_handler(_json_submit)}
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
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
    await server.stop(grace=None)


# --------------------------------------------------------------------------- client


@dataclass
class Result:
    size: int
    method: str
    seconds: float
    peak_kib: int  # receiver memory above idle

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
    def __init__(self, port: int) -> None:
        self.channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=grpc_options(BIG_MESSAGE)
        )
        self.stub = pb_grpc.BackendStub(self.channel)
        self.raw = self.channel.stream_unary(RAW_METHOD)
        self.json = self.channel.unary_unary(JSON_METHOD)
        self.reset = self.channel.unary_unary(RESET_METHOD)
        self.peak = self.channel.unary_unary(PEAK_METHOD)

    async def measure(self, size: int, method: str, coro_factory) -> Result:
        idle = int(await self.reset(b"", timeout=10))
        start = time.perf_counter()
        await coro_factory()
        seconds = time.perf_counter() - start
        peak = int(await self.peak(b"", timeout=10))
        return Result(size, method, seconds, max(0, peak - idle))

    async def submit(self, path: Path, codec: Codec | None, sha256: str | None = None) -> None:
        await send_results(
            self.stub,
            path,
            session_id="bench",
            strategy_name="bench",
            codec=codec,
            sha256=sha256,
            timeout_s=600,
        )

    async def raw_stream(self, size: int) -> None:
        chunk = os.urandom(MiB)

        async def messages() -> AsyncIterator[bytes]:
            left = size
            while left > 0:
                yield chunk if left >= MiB else chunk[:left]
                left -= MiB

        await self.raw(messages(), timeout=600)

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
    client = Client(int(proc.stdout.readline()))
    try:
        yield client
    finally:
        await client.channel.close()
        proc.stdin.close()
        proc.wait(timeout=30)


async def run(quick: bool) -> None:
    sizes = [1 * MB, 10 * MB] if quick else [1 * MB, 10 * MB, 100 * MB]
    memory_check = 64 * MB if quick else 256 * MB
    repeats = {1 * MB: 5, 10 * MB: 3, 100 * MB: 2}
    results: list[Result] = []
    memory: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as tmp:
        async with receiver() as client:
            for size in sizes:
                path = Path(tmp) / f"bundle-{size}.tar"
                make_bundle(path, size)
                candidates = {
                    "raw gRPC stream (ceiling)": lambda s=size: client.raw_stream(s),
                    "SubmitResults auto (zstd)": lambda p=path: client.submit(p, None),
                    "SubmitResults raw codec": lambda p=path: client.submit(p, Codec.RAW),
                    # The host's spool can record the hash when it writes the bundle.
                    "SubmitResults raw, hash known": lambda p=path, h=sha256_file(path): (
                        client.submit(p, Codec.RAW, h)
                    ),
                    "gzip+base64+JSON unary": lambda p=path: client.gzip_base64_json(p),
                }
                for method, factory in candidates.items():
                    n = 1 if method.startswith("gzip") and size >= 100 * MB else repeats[size]
                    best = min(
                        [await client.measure(size, method, factory) for _ in range(n)],
                        key=lambda r: r.seconds,
                    )
                    results.append(best)
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
        f"{'size':>7}  {'method':<28} {'time s':>8} {'MB/s':>8} {'vs ceiling':>10} "
        f"{'vs json':>8} {'recv peak MiB':>13}"
    )
    for size in sorted({r.size for r in results}):
        rows = [r for r in results if r.size == size]
        ceiling = next(r for r in rows if r.method.startswith("raw gRPC"))
        json_row = next(r for r in rows if r.method.startswith("gzip"))
        for r in rows:
            print(
                f"{size // MB:>5}MB  {r.method:<28} {r.seconds:>8.3f} {r.mb_s:>8.1f} "
                f"{r.mb_s / ceiling.mb_s:>10.2f} {r.mb_s / json_row.mb_s:>7.1f}x "
                f"{r.peak_kib / 1024:>13.1f}"
            )
        raw = next((r for r in rows if r.method == "SubmitResults raw, hash known"), None)
        if raw is not None:
            figure = f"SubmitResults raw (hash known), {size // MB} MB"
            collect(figure, "raw gRPC byte stream", [raw.mb_s / ceiling.mb_s], ">= 0.6")
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
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(serve() if args.serve else run(args.quick))


if __name__ == "__main__":
    main()
