"""Operator mistakes with real services, real certificates (from ``ktrdr certs create``) and the
real CLI: each one is one line naming the cause and the setting to change, within a deadline.

* a plaintext client against a TLS backend, a TLS client against a plaintext one, an unknown
  CA, a certificate that does not name the address, no client certificate, a client
  certificate of another CA, a wrong token (CLI and ``TrainingClient``);
* a backend that cannot reach its host over TLS refuses host mode with the reason, never
  falls back to local;
* a host that cannot deliver to a TLS backend makes the operation say why while it waits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ktrdr.client import KtrdrServiceError, TrainingClient
from ktrdr.security.channels import sync_channel
from ktrdr.security.tls import ClientTLS
from ktrdr.training.v1 import common_pb2
from tests.support.processes import (
    ADMIN_TOKEN,
    HOST_AUTH_TOKEN,
    HOST_ROLE_TOKEN,
    free_port,
    provision_tokens,
)
from tests.support.timing import scaled

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
CLI_DEADLINE_S = 30  # each mistake must be answered well within this


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KTRDR_", "GRPC_"))}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def run_ktrdr(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", *args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=CLI_DEADLINE_S,
    )


@dataclass
class Pki:
    dir: Path
    ca: Path
    other_ca: Path

    def pem(self, name: str) -> Path:
        return self.dir / f"{name}.pem"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    made = run_ktrdr(
        "certs", "create", "--dir", str(root / "pki"), "--service", "svc=127.0.0.1,localhost",
        "--client", "alice", cwd=root,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "--tls-cert" in made.stdout and "KTRDR_TLS_CERT=" in made.stdout
    other = run_ktrdr(
        "certs", "create", "--dir", str(root / "other"), "--client", "mallory", cwd=root
    )
    assert other.returncode == 0, other.stderr
    return Pki(root / "pki", root / "pki" / "ca.pem", root / "other" / "ca.pem")


@dataclass
class Proc:
    address: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def _spawn(args: list[str], work: Path, env: dict[str, str], tls: ClientTLS | None) -> Proc:
    port = free_port()
    log = work / "service.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ktrdr.cli.main", *args, "--address", f"127.0.0.1:{port}"],
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(**env),
        )
    proc = Proc(f"127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 60
    try:
        with sync_channel(proc.address, tls=tls) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{args[0]} did not start:\n{proc.text()[-3000:]}")
                try:
                    if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                        return proc
                except grpc.RpcError:
                    time.sleep(0.1)
    except BaseException:
        proc.stop()
        raise


def _mtls_flags(pki: Pki, *, require_client_cert: bool = True) -> list[str]:
    flags = ["--tls-cert", str(pki.pem("svc")), "--tls-key", str(pki.key("svc"))]
    if require_client_cert:
        flags += ["--tls-ca", str(pki.ca), "--tls-require-client-cert"]
    return flags


def start_backend(
    work: Path, data: Path, extra: list[str], tls: ClientTLS | None, **env: str
) -> Proc:
    work.mkdir(parents=True, exist_ok=True)
    provision_tokens(work)
    base = {
        "TRAINING_DEFAULT_MODE": "local",
        "KTRDR_BACKEND_MARKET_DATA_DIR": str(data),
        "KTRDR_BACKEND_DEVICE": "cpu",
        "KTRDR_BACKEND_HEALTH_CHECK_TIMEOUT_S": "2",
        "KTRDR_BACKEND_HOST_TOKEN": HOST_AUTH_TOKEN,
        "KTRDR_BACKEND_WORKER_SPARES": "0",
    }
    args = ["backend", "serve", "--data-dir", str(work), *extra]
    return _spawn(args, work, {**base, **env}, tls)


def start_host(work: Path, data: Path, extra: list[str], tls: ClientTLS | None) -> Proc:
    work.mkdir(parents=True, exist_ok=True)
    env = {
        "KTRDR_HOST_AUTH_TOKEN": HOST_AUTH_TOKEN,
        "KTRDR_HOST_BACKEND_TOKEN": HOST_ROLE_TOKEN,
        "KTRDR_HOST_DELIVERY_INITIAL_BACKOFF_S": "0.2",
        "KTRDR_HOST_DELIVERY_MAX_BACKOFF_S": "1",
        "KTRDR_HOST_WORKER_SPARES": "0",
    }
    args = ["host", "serve", "--data-dir", str(data), "--spool-dir", str(work / "spool")]
    return _spawn([*args, "--device", "cpu", *extra], work, env, tls)


@pytest.fixture(scope="module")
def backends(
    pki: Pki, tmp_path_factory: pytest.TempPathFactory, sample_data_dir: Path
) -> Iterator[dict[str, Proc]]:
    root = tmp_path_factory.mktemp("backends")
    alice = ClientTLS.from_paths(pki.ca, pki.pem("alice"), pki.key("alice"))
    started: dict[str, Proc] = {}
    try:
        started["mtls"] = start_backend(root / "mtls", sample_data_dir, _mtls_flags(pki), alice)
        started["plain"] = start_backend(root / "plain", sample_data_dir, [], None)
        yield started
    finally:
        for proc in started.values():
            proc.stop()


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr  # no gRPC log lines above it
    assert lines[0].startswith("error: "), lines
    return lines[0]


# (name, backend, CLI TLS flags, fragments the one line must hold)
def _cases(pki: Pki) -> list[tuple[str, str, list[str], tuple[str, ...]]]:
    return [
        ("plaintext client, TLS backend", "mtls", [], ("serves TLS", "plaintext", "--tls-ca")),
        ("TLS client, plaintext backend", "plain", ["--tls-ca", str(pki.ca)],
         ("serves plaintext", "--tls-ca", "--tls-cert/--tls-key")),
        ("unknown CA", "mtls", ["--tls-ca", str(pki.other_ca)],
         ("not signed by the CA given (ca.pem)", "--tls-ca")),
        ("no client certificate", "mtls", ["--tls-ca", str(pki.ca)],
         ("requires a client certificate", "--tls-cert")),
        ("client certificate of another CA", "mtls",
         ["--tls-ca", str(pki.ca), "--tls-cert", str(pki.other_ca.parent / "mallory.pem"),
          "--tls-key", str(pki.other_ca.parent / "mallory.key")],
         ("refused this side's client certificate", "mallory.pem")),
        ("certificate does not name the address", "mtls",
         ["--tls-ca", str(pki.ca), "--tls-cert", str(pki.pem("alice")), "--tls-key",
          str(pki.key("alice")), "--tls-server-name", "wrong.example"],
         ("does not name wrong.example", "--tls-server-name")),
    ]  # fmt: skip


def test_each_tls_mistake_is_one_line_naming_the_setting(
    pki: Pki, backends: dict[str, Proc], tmp_path: Path
) -> None:
    for name, which, flags, fragments in _cases(pki):
        started = time.monotonic()
        done = run_ktrdr(
            "ops", "list", "--backend", backends[which].address, *flags, "--token", ADMIN_TOKEN,
            cwd=tmp_path,
        )  # fmt: skip
        line = _one_error_line(done)
        for fragment in fragments:
            assert fragment in line, (name, line)
        assert "Socket closed" not in line and "is the service running" not in line, line
        assert time.monotonic() - started < scaled(15), name  # a bound, not a speed check


def test_certificates_from_certs_create_work_and_a_wrong_token_is_named(
    pki: Pki, backends: dict[str, Proc], tmp_path: Path
) -> None:
    tls = ["--tls-ca", str(pki.ca), "--tls-cert", str(pki.pem("alice")),
           "--tls-key", str(pki.key("alice"))]  # fmt: skip
    ok = run_ktrdr("ops", "list", "--backend", backends["mtls"].address, *tls,
                   "--token", ADMIN_TOKEN, cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    # by the name in the certificate too
    port = backends["mtls"].address.rsplit(":", 1)[1]
    by_name = run_ktrdr("ops", "list", "--backend", f"localhost:{port}", *tls,
                        "--token", ADMIN_TOKEN, cwd=tmp_path)  # fmt: skip
    assert by_name.returncode == 0, by_name.stderr
    wrong = run_ktrdr("ops", "list", "--backend", backends["plain"].address,
                      "--token", "not-a-token", cwd=tmp_path)  # fmt: skip
    line = _one_error_line(wrong)
    assert "UNAUTHENTICATED" in line and "--token" in line, line


def test_training_client_raises_the_same_line(pki: Pki, backends: dict[str, Proc]) -> None:
    plain = TrainingClient(backends["mtls"].address, token=ADMIN_TOKEN, tls=ClientTLS())
    no_cert = TrainingClient(
        backends["mtls"].address, token=ADMIN_TOKEN, tls=ClientTLS.from_paths(pki.ca)
    )
    for client, fragment in ((plain, "serves TLS"), (no_cert, "requires a client certificate")):
        with client, pytest.raises(KtrdrServiceError) as caught:
            client.operations()
        assert caught.value.code == grpc.StatusCode.UNAVAILABLE
        assert fragment in caught.value.message and "\n" not in caught.value.message


def test_host_mode_is_refused_not_run_locally_when_the_host_needs_tls(
    pki: Pki, tmp_path: Path, sample_data_dir: Path, tiny_strategy_yaml: str
) -> None:
    svc = ClientTLS.from_paths(pki.ca, pki.pem("svc"), pki.key("svc"))
    host = start_host(tmp_path / "host", sample_data_dir, _mtls_flags(pki), svc)
    backend = None
    try:
        # the backend reaches its host in plaintext: KTRDR_BACKEND_HOST_TLS_CA is missing
        backend = start_backend(
            tmp_path / "backend", sample_data_dir, ["--host-address", host.address], None
        )
        strategy = tmp_path / "tiny.yaml"
        strategy.write_text(tiny_strategy_yaml)
        done = run_ktrdr("train", str(strategy), "--mode", "host", "--backend", backend.address,
                         "--token", ADMIN_TOKEN, cwd=tmp_path)  # fmt: skip
        line = _one_error_line(done)
        assert "FAILED_PRECONDITION" in line and "not run locally" in line, line
        assert "KTRDR_BACKEND_HOST_TLS_CA" in line, line
        listed = run_ktrdr("ops", "list", "--backend", backend.address, "--token", ADMIN_TOKEN,
                           cwd=tmp_path)  # fmt: skip
        assert listed.returncode == 0 and "local" not in listed.stdout, listed.stdout
        assert "KTRDR_BACKEND_HOST_TLS_CA" in backend.text()  # the backend's log says it too
    finally:
        if backend is not None:
            backend.stop()
        host.stop()


def test_a_host_that_cannot_deliver_says_why_on_the_operation(
    pki: Pki, tmp_path: Path, sample_data_dir: Path, tiny_strategy_yaml: str
) -> None:
    host = start_host(tmp_path / "host", sample_data_dir, [], None)
    backend = None
    tls = ClientTLS.from_paths(pki.ca)
    try:
        # the backend serves TLS; the host lacks KTRDR_HOST_BACKEND_TLS_CA
        backend = start_backend(
            tmp_path / "backend",
            sample_data_dir,
            [*_mtls_flags(pki, require_client_cert=False), "--host-address", host.address],
            tls,
        )
        with TrainingClient(backend.address, token=ADMIN_TOKEN, tls=tls) as client:
            op = client.create_training(tiny_strategy_yaml, mode="host")
            assert op.mode == "host", op
            seen = ""
            deadline = time.monotonic() + 120
            try:
                for message in client.events(op.operation_id, timeout_s=120):
                    event = message.event
                    if event.kind == common_pb2.PROGRESS_KIND_HEARTBEAT and (
                        "cannot deliver" in event.message
                    ):
                        seen = event.message
                        break
                    assert time.monotonic() < deadline
                    assert event.kind != common_pb2.PROGRESS_KIND_COMPLETED, event
            finally:
                client.cancel(op.operation_id, reason="test over")
        assert "serves TLS" in seen and "KTRDR_HOST_BACKEND_TLS_CA" in seen, seen
        assert "KTRDR_HOST_BACKEND_TLS_CA" in host.text()
        assert "cannot deliver the model yet" in backend.text()
    finally:
        if backend is not None:
            backend.stop()
        host.stop()
