#!/usr/bin/env python3
"""The cost of TLS and of the auth interceptor: unary latency and SubmitResults throughput.

Four server configurations, side by side in one run, compared with the first:

  A  plaintext, no authentication (``insecure_no_auth``)  -- the baseline
  B  plaintext + bearer-token auth (the AuthInterceptor)
  C  TLS + token auth
  D  mTLS (client certificate required) + token auth

1. Unary latency: real ``BackendApp`` servers in this process (one per configuration), one warm
   ``aio_channel`` each; ``GetTrainingConfig`` called ``--calls`` times per configuration per
   round, configurations alternating (round 1: A, B, C, D; round 2: B, C, D, A; ...); the
   median per-call latency of each round, divided by A's of the same round. "Token auth" is
   the whole cost: the client's token interceptor and the server's AuthInterceptor.
2. SubmitResults throughput: the raw transfer path (``send_results`` -> ``receive_results`` into
   a temporary directory, codec RAW, random incompressible bytes) behind the same server stack
   (``build_server`` + ``bind``), with and without the ``AuthInterceptor`` and the backend's
   policy, in a subprocess (as a host and its backend are two processes); ``--mb`` MB bundles,
   configurations alternating the same way; MB/s divided by A's of the same round.

Ratios: median [min..max] over the rounds. Latency ratio > 1 and throughput ratio < 1 mean
slower than A. Certificates (a throwaway CA, server and client) come from
``ktrdr.security.selfsigned``.

Usage: python benchmarks/bench_security.py [--rounds N] [--calls N] [--mb N] [--transfer-rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import grpc.aio

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks")]

from ratios import collect  # noqa: E402

from ktrdr.security.channels import aio_channel  # noqa: E402
from ktrdr.security.interceptor import AuthInterceptor, Identity, Policy  # noqa: E402
from ktrdr.security.selfsigned import issue, make_ca  # noqa: E402
from ktrdr.security.tls import ClientTLS, ServerTLS  # noqa: E402
from ktrdr.security.tokens import generate_token, read_token_file  # noqa: E402
from ktrdr.service.server import bind, build_server  # noqa: E402
from ktrdr.training.v1 import backend_pb2 as pb  # noqa: E402
from ktrdr.training.v1 import backend_pb2_grpc as pb_grpc  # noqa: E402
from ktrdr.transfer import (  # noqa: E402
    Codec,
    TransferError,
    grpc_options,
    receive_results,
    send_results,
)

if TYPE_CHECKING:
    from ktrdr.backend import BackendApp

MB = 1_000_000
MiB = 1 << 20
SERVICE = pb.DESCRIPTOR.services_by_name["Backend"].full_name
NAMES = ("A", "B", "C", "D")
LABELS = {
    "A": "plaintext, no auth",
    "B": "plaintext + token auth",
    "C": "TLS + token auth",
    "D": "mTLS + token auth",
}


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_certs(directory: Path) -> Certs:
    """A throwaway CA (EC P-256), a server certificate for 127.0.0.1/localhost and a client one.

    The key type only matters for the handshake; the channels here are warm, so what is
    measured is the record layer (the symmetric cipher gRPC negotiates).
    """
    ca = make_ca(directory)
    issue(ca, "server")
    issue(ca, "client", service=False)
    return certs_in(directory)


def certs_in(d: Path) -> Certs:
    """The files ``make_certs`` wrote in ``d``."""
    return Certs(
        d / "ca.pem", d / "server.pem", d / "server.key", d / "client.pem", d / "client.key"
    )


def server_tls(name: str, certs: Certs) -> ServerTLS | None:
    if name in ("A", "B"):
        return None
    return ServerTLS(
        certs.server_cert,
        certs.server_key,
        certs.ca if name == "D" else None,
        require_client_cert=name == "D",
    )


def client_tls(name: str, certs: Certs) -> ClientTLS | None:
    if name in ("A", "B"):
        return None
    if name == "C":
        return ClientTLS.from_paths(certs.ca)
    return ClientTLS.from_paths(certs.ca, certs.client_cert, certs.client_key)


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Ratio:
    figure: str
    compared_with: str
    values: list[float]

    def row(self) -> str:
        med = statistics.median(self.values)
        spread = f"[{min(self.values):.3f}..{max(self.values):.3f}]"
        return (
            f"{self.figure:<42} {self.compared_with:<22} {med:>6.3f} {spread:<15} "
            f"({len(self.values)})"
        )


def ratios(per_round: dict[str, list[float]], figure: str) -> list[Ratio]:
    base = per_round["A"]
    return [
        Ratio(
            f"{figure}, {LABELS[name]}",
            f"A: {LABELS['A']}",
            [x / b for x, b in zip(per_round[name], base, strict=True)],
        )
        for name in NAMES[1:]
    ]


# --------------------------------------------------------------------------- unary latency


async def start_backend(name: str, work: Path, certs: Certs) -> tuple[BackendApp, grpc.aio.Channel]:
    from ktrdr.backend import BackendApp, BackendSettings  # PyTorch too: seconds to import

    data = work / f"backend-{name}"
    tls = server_tls(name, certs)
    settings = BackendSettings(
        address="127.0.0.1:0",
        data_dir=data,
        strategies_dir=data / "strategies",
        market_data_dir=ROOT / "data" / "samples",
        default_mode="local",
        device="cpu",
        grace_s=0.2,
        insecure_no_auth=name == "A",
        host_token_file=None,
        tls_cert=tls.cert if tls else None,
        tls_key=tls.key if tls else None,
        tls_ca=tls.client_ca if tls else None,
        tls_require_client_cert=bool(tls and tls.require_client_cert),
    )
    app = BackendApp(settings)
    port = await app.start()
    # A fresh backend with auth on writes DATA_DIR/admin.token (and host.token).
    token = None if name == "A" else read_token_file(data / "admin.token")
    assert name == "A" or token, f"{name}: no admin token written"
    channel = aio_channel(f"127.0.0.1:{port}", tls=client_tls(name, certs), token=token)
    return app, channel


def round_order(round_index: int) -> list[str]:
    """A, B, C, D; B, C, D, A; ... (no configuration always runs first or after another)."""
    k = round_index % len(NAMES)
    return [*NAMES[k:], *NAMES[:k]]


async def bench_unary(
    work: Path, certs: Certs, rounds: int, calls: int, ready: Callable[[], Awaitable[object]]
) -> dict[str, list[float]]:
    """Per configuration, the median per-call latency (seconds) of each round.

    ``ready`` is awaited after the warm-up, before the timed rounds.
    """
    started = [await start_backend(name, work, certs) for name in NAMES]
    stubs = {name: pb_grpc.BackendStub(ch) for name, (_, ch) in zip(NAMES, started, strict=True)}
    request = pb.GetTrainingConfigRequest()
    try:
        for stub in stubs.values():  # connect, handshake, token cache, first-call paths
            for _ in range(max(20, calls // 10)):
                await stub.GetTrainingConfig(request, timeout=10)
        await ready()
        medians: dict[str, list[float]] = {name: [] for name in NAMES}
        for r in range(rounds):
            for name in round_order(r):
                call = stubs[name].GetTrainingConfig
                times = []
                for _ in range(calls):
                    start = time.perf_counter()
                    await call(request, timeout=10)
                    times.append(time.perf_counter() - start)
                medians[name].append(statistics.median(times))
        return medians
    finally:
        for app, channel in started:
            await channel.close()
            await app.stop()


# --------------------------------------------------------------------------- throughput
# The receiving servers run in a subprocess (a host and its backend are separate processes):
# the sender's and the receiver's Python work do not share one interpreter lock.

MAX_MESSAGE = 64 * MiB
TOKEN_ENV = "KTRDR_BENCH_TOKEN"


class _Receiver(pb_grpc.BackendServicer):
    """SubmitResults only: the project's receiver into a temporary directory, then deleted."""

    def __init__(self, incoming: Path) -> None:
        self.incoming = incoming

    async def SubmitResults(self, request_iterator, context):  # type: ignore[no-untyped-def]
        try:
            received = await receive_results(
                request_iterator, tmp_dir=self.incoming, max_raw_bytes=1 << 34
            )
        except TransferError as error:
            await context.abort(error.code, error.message)
        received.path.unlink()
        return pb.SubmitResultsResponse(sha256=received.sha256, raw_size_bytes=received.raw_size)


def backend_policy() -> Policy:
    """``ktrdr.backend.auth.roles.backend_policy()``, loaded without the ``ktrdr.backend``
    package (which imports the whole backend, PyTorch included: seconds in the subprocess)."""
    path = ROOT / "src" / "ktrdr" / "backend" / "auth" / "roles.py"
    spec = importlib.util.spec_from_file_location("_bench_backend_roles", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    policy: Policy = module.backend_policy()
    return policy


def _resolver(token: str) -> Callable[[str], Identity | None]:
    identity = Identity("bench", "host")
    return lambda given: identity if given == token else None


async def serve_receivers(work: Path) -> None:
    """Four SubmitResults servers (A..D); prints their ports, serves until stdin closes."""
    certs = certs_in(work / "certs")
    token = os.environ[TOKEN_ENV]
    servers, ports = [], []
    for name in NAMES:
        incoming = work / f"incoming-{name}"
        incoming.mkdir()
        receiver = _Receiver(incoming)
        interceptors = []
        if name != "A":
            interceptors.append(
                AuthInterceptor(_resolver(token), backend_policy(), service="backend", hint="-")
            )

        def register(server: grpc.aio.Server, r: _Receiver = receiver) -> None:
            pb_grpc.add_BackendServicer_to_server(r, server)

        server, health = build_server(
            register,
            [SERVICE],
            max_message_bytes=MAX_MESSAGE,
            interceptors=interceptors,
            service="backend",
        )
        ports.append(bind(server, "127.0.0.1:0", server_tls(name, certs)))
        await server.start()
        await health.set_serving(True)
        servers.append(server)
    print(*ports, flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until EOF
    for server in servers:
        await server.stop(None)


class Receivers:
    """The receiver subprocess: started early (its imports take a while), ports read later."""

    def __init__(self, work: Path, token: str) -> None:
        self.token = token
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-receivers", str(work)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, TOKEN_ENV: token},
        )
        self.ports: list[int] = []

    async def wait_ready(self) -> None:
        if not self.ports:
            assert self.proc.stdout is not None
            line = await asyncio.to_thread(self.proc.stdout.readline)
            if not line.strip():
                raise RuntimeError("bench_security: the receiver subprocess did not start")
            self.ports = [int(p) for p in line.split()]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def make_bundle(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(16 * MiB, left)
            f.write(os.urandom(n))
            left -= n


async def bench_submit(
    work: Path, certs: Certs, receivers: Receivers, rounds: int, size_mb: float
) -> dict[str, list[float]]:
    """Per configuration, the MB/s of each round's SubmitResults of one ``size_mb`` MB bundle."""
    size = max(1, int(size_mb * MB))
    bundle = work / "bundle.bin"
    make_bundle(bundle, size)
    warmup = work / "warmup.bin"
    make_bundle(warmup, min(size, 1 * MB))
    await receivers.wait_ready()
    channels = {
        name: aio_channel(
            f"127.0.0.1:{port}",
            options=grpc_options(MAX_MESSAGE),
            tls=client_tls(name, certs),
            token=None if name == "A" else receivers.token,
        )
        for name, port in zip(NAMES, receivers.ports, strict=True)
    }
    stubs = {name: pb_grpc.BackendStub(channel) for name, channel in channels.items()}

    async def submit(stub: pb_grpc.BackendStub, path: Path) -> None:
        reply = await send_results(
            stub, path, session_id="bench", strategy_name="bench", codec=Codec.RAW, timeout_s=600
        )
        assert reply.raw_size_bytes == path.stat().st_size, reply

    try:
        for stub in stubs.values():
            await submit(stub, warmup)
        speeds: dict[str, list[float]] = {name: [] for name in NAMES}
        for r in range(rounds):
            for name in round_order(r):
                start = time.perf_counter()
                await submit(stubs[name], bundle)
                speeds[name].append(size / MB / (time.perf_counter() - start))
        return speeds
    finally:
        for channel in channels.values():
            await channel.close()
        bundle.unlink(missing_ok=True)
        warmup.unlink(missing_ok=True)


# --------------------------------------------------------------------------- main


@dataclass
class Args:
    rounds: int
    calls: int
    mb: float
    transfer_rounds: int


def parse(argv: list[str]) -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="latency rounds (default 30)")
    parser.add_argument(
        "--calls", type=int, default=100, help="unary calls per configuration and round (100)"
    )
    parser.add_argument("--mb", type=float, default=64, help="SubmitResults bundle, MB (64)")
    parser.add_argument(
        "--transfer-rounds", type=int, default=0, help="SubmitResults rounds (min(--rounds, 12))"
    )
    # run_all.py passes its own arguments (e.g. --quick) to every benchmark.
    parser.add_argument("--quick", action="store_true", help="8 rounds, 50 calls, 16 MB")
    args, _ = parser.parse_known_args(argv)
    if args.quick:
        args.rounds, args.calls, args.mb = min(args.rounds, 8), min(args.calls, 50), 16
    rounds = max(1, args.rounds)
    transfer_rounds = args.transfer_rounds or min(rounds, 12)
    return Args(rounds, max(1, args.calls), args.mb, max(1, transfer_rounds))


def report(latency: dict[str, list[float]], speed: dict[str, list[float]], args: Args) -> None:
    print(
        f"unary GetTrainingConfig on a warm channel, {args.calls} calls per configuration per "
        f"round; SubmitResults of {args.mb:g} MB random bytes, codec RAW"
    )
    for name in NAMES:
        lat = statistics.median(latency[name]) * 1e6
        mbs = statistics.median(speed[name])
        print(
            f"  {name} {LABELS[name]:<24} latency median {lat:8.1f} us, "
            f"SubmitResults median {mbs:7.1f} MB/s"
        )
    print()
    print(f"{'figure':<42} {'compared with':<22} {'ratio median [min..max]':<22} (rounds)")
    for ratio in [
        *ratios(latency, "unary latency"),
        *ratios(speed, "SubmitResults MB/s"),
    ]:
        print(ratio.row())
    print("(latency ratio > 1 = slower than A; throughput ratio < 1 = slower than A)")
    for ratio in ratios(latency, "unary latency"):
        collect(ratio.figure, ratio.compared_with, ratio.values, "cost shown (latency > 1 slower)")
    for ratio in ratios(speed, "SubmitResults MB/s"):
        collect(ratio.figure, ratio.compared_with, ratio.values, "cost shown (< 1 slower)")


async def run(args: Args) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-security-") as tmp:
        work = Path(tmp)
        (work / "certs").mkdir()
        certs = make_certs(work / "certs")
        receivers = Receivers(work, generate_token())
        try:
            latency = await bench_unary(
                work, certs, args.rounds, args.calls, ready=receivers.wait_ready
            )
            speed = await bench_submit(work, certs, receivers, args.transfer_rounds, args.mb)
        finally:
            receivers.close()
    report(latency, speed, args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-receivers"]:
        asyncio.run(serve_receivers(Path(argv[1])))
        return 0
    args = parse(argv)
    logging.getLogger("ktrdr").setLevel(logging.ERROR)  # "authentication is OFF" for A is expected
    start = time.perf_counter()
    asyncio.run(run(args))
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
