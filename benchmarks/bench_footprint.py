"""What the serving processes and the CLI cost before any training (part of ``make bench``).

1. Idle RSS of a backend that routes to hosts only (default mode host, one host address),
   against a bare ``grpc.aio`` server with health and reflection, each started fresh, one after
   the other, alternating; RSS read from ``/proc/PID/status`` once it reports SERVING and its
   RSS has settled. The host's idle RSS against the same bare server is shown beside it.
2. ``ktrdr ops list`` (the whole CLI, a fresh interpreter) against a bare Python stub call doing
   the same ListOperations with the same token (also a fresh interpreter), alternating.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from ratios import collect  # noqa: E402

from tests.support.processes import (  # noqa: E402
    ADMIN_TOKEN,
    Service,
    free_port,
    start_backend,
    start_host,
)

DATA = ROOT / "data" / "samples"

BARE_SERVER = """
import asyncio, sys
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

async def main():
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
        server,
    )
    server.add_insecure_port(sys.argv[1])
    await server.start()
    await server.wait_for_termination()

asyncio.run(main())
"""

BARE_STUB_CALL = """
import sys
import grpc
from ktrdr.training.v1 import backend_pb2, backend_pb2_grpc
with grpc.insecure_channel(sys.argv[1]) as channel:
    stub = backend_pb2_grpc.BackendStub(channel)
    reply = stub.ListOperations(
        backend_pb2.ListOperationsRequest(), metadata=[("authorization", "Bearer " + sys.argv[2])]
    )
print(len(reply.operations))
"""


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def settled_rss(pid: int) -> float:
    """RSS once two readings 0.5 s apart differ by under 1 % (start-up allocations done)."""
    previous = rss_mib(pid)
    for _ in range(20):
        time.sleep(0.5)
        current = rss_mib(pid)
        if abs(current - previous) < 0.01 * previous:
            return current
        previous = current
    return previous


def bare_server(work: Path) -> Service:
    port = free_port()
    log = work / "bare.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", BARE_SERVER, f"127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    service = Service("bare", f"127.0.0.1:{port}", process, log)
    service.wait_serving()
    return service


def measure(start: object) -> float:
    service = start()  # type: ignore[operator]
    try:
        return settled_rss(service.process.pid)
    finally:
        service.stop()


def bench_rss(work: Path, repeats: int) -> None:
    backend_ratios: list[float] = []
    host_ratios: list[float] = []
    for i in range(repeats):
        run = work / f"rss{i}"
        run.mkdir()
        unused_host = f"127.0.0.1:{free_port()}"
        bare = measure(lambda run=run: bare_server(run))
        backend = measure(
            lambda run=run, h=unused_host: start_backend(
                run / "backend", DATA, [h], default_mode="host"
            )
        )
        host = measure(lambda run=run: start_host(run / "host", DATA))
        backend_ratios.append(backend / bare)
        host_ratios.append(host / bare)
        print(f"  idle RSS: bare {bare:.0f} MiB, backend {backend:.0f} MiB, host {host:.0f} MiB")
    collect(
        "backend idle RSS (routes to hosts only)",
        "bare grpc.aio server with health + reflection",
        backend_ratios,
        "<= 2",
    )
    collect("host idle RSS", "bare grpc.aio server with health + reflection", host_ratios, "-")


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=ROOT)
    return time.perf_counter() - start


def bench_ops_list(work: Path, repeats: int) -> None:
    backend = start_backend(work / "ops-backend", DATA, [], default_mode="local")
    env = {**os.environ, "KTRDR_TOKEN": ADMIN_TOKEN}
    cli = [sys.executable, "-m", "ktrdr.cli.main", "ops", "list", "--backend", backend.address]
    stub = [sys.executable, "-c", BARE_STUB_CALL, backend.address, ADMIN_TOKEN]
    try:
        timed(cli, env), timed(stub, env)  # warm the file cache for both
        ratios = []
        for _ in range(repeats):
            ratios.append(timed(cli, env) / timed(stub, env))
    finally:
        backend.stop()
    collect("`ktrdr ops list`", "a bare Python stub call (fresh interpreter)", ratios, "<= 2")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args, _ = parser.parse_known_args()
    repeats = 2 if args.quick else args.repeats
    with tempfile.TemporaryDirectory(prefix="ktrdr-footprint-") as tmp:
        work = Path(tmp)
        print("== idle footprint ==")
        bench_rss(work, repeats)
        print("== CLI start ==")
        bench_ops_list(work, max(5, repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
