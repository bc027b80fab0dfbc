"""The README's grpcurl invocations, run as written with the real grpcurl binary against a live
host and backend (reflection only, no proto files).

Each example below is README text: ``127.0.0.1:50052`` is the backend, ``127.0.0.1:50051`` the
host; the test swaps in the live servers' addresses and runs the line with bash from the
repository root. ``test_readme_grpcurl_lines_are_tested`` keeps README.md and this list in step.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ktrdr.client import LocalServices
from tests.e2e.readme_blocks import grpcurl_unusable
from tests.support.timing import scaled

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
GRPCURL = REPO / ".venv" / "bin" / "grpcurl"
B, H = "127.0.0.1:50052", "127.0.0.1:50051"
# Backend calls carry the token the README sets with TOKEN=$(cat .ktrdr/backend/admin.token);
# health checks and the host's GetCapabilities are open.
AUTH = '-H "authorization: Bearer $TOKEN"'
# grpcurl finds every method, the open health check included, through reflection, which
# needs the token of the service it asks: the host's is in .ktrdr-host/auth.token.
HOST_AUTH = '-H "authorization: Bearer $HOST_TOKEN"'

LIST = f".venv/bin/grpcurl -plaintext {AUTH} {B} list"
LIST_METHODS = f".venv/bin/grpcurl -plaintext {AUTH} {B} list ktrdr.training.v1.Backend"
DESCRIBE = (
    f".venv/bin/grpcurl -plaintext {AUTH} {B} describe ktrdr.training.v1.CreateTrainingRequest"
)
HEALTH = (
    f".venv/bin/grpcurl -plaintext {AUTH} "
    f'-d \'{{"service": "ktrdr.training.v1.Backend"}}\' '
    f"{B} grpc.health.v1.Health/Check"
)
HOST_HEALTH = f".venv/bin/grpcurl -plaintext {HOST_AUTH} {H} grpc.health.v1.Health/Check"
CREATE_BY_NAME = (
    f".venv/bin/grpcurl -plaintext {AUTH} "
    '-d \'{"strategy_name": "rsi_single", '
    '"execution_mode": "EXECUTION_MODE_HOST", "overrides": {"seed": 7}}\' '
    f"{B} ktrdr.training.v1.Backend/CreateTraining"
)
CREATE_INLINE = (
    '.venv/bin/python -c \'import json, sys; print(json.dumps({"strategy_yaml": '
    'open(sys.argv[1]).read(), "execution_mode": "EXECUTION_MODE_LOCAL"}))\' '
    "examples/strategies/rsi_single.yaml | "
    f".venv/bin/grpcurl -plaintext {AUTH} -d @ {B} ktrdr.training.v1.Backend/CreateTraining"
)
WATCH = (
    f".venv/bin/grpcurl -plaintext {AUTH} "
    '-d \'{"operation_id": "OPERATION_ID"}\' '
    f"{B} ktrdr.training.v1.Backend/WatchOperation"
)
GET_OPERATION = (
    f".venv/bin/grpcurl -plaintext {AUTH} "
    '-d \'{"operation_id": "OPERATION_ID"}\' '
    f"{B} ktrdr.training.v1.Backend/GetOperation"
)
GET_CONFIG = f".venv/bin/grpcurl -plaintext {AUTH} {B} ktrdr.training.v1.Backend/GetTrainingConfig"
UPDATE_CONFIG = (
    f".venv/bin/grpcurl -plaintext {AUTH} "
    '-d \'{"default_mode": "EXECUTION_MODE_LOCAL"}\' '
    f"{B} ktrdr.training.v1.Backend/UpdateTrainingConfig"
)
LIST_MODELS = (
    f".venv/bin/grpcurl -plaintext {AUTH} "
    '-d \'{"strategy_name": "rsi_single"}\' '
    f"{B} ktrdr.training.v1.Backend/ListModels"
)
LIST_STRATEGIES = (
    f".venv/bin/grpcurl -plaintext {AUTH} {B} ktrdr.training.v1.Backend/ListStrategies"
)
SET_ALIAS = (
    f".venv/bin/grpcurl -plaintext {AUTH} "
    '-d \'{"strategy_name": "rsi_single", "alias": "production", "version": 1}\' '
    f"{B} ktrdr.training.v1.Backend/SetModelAlias"
)
GET_MODEL = (
    f".venv/bin/grpcurl -plaintext {AUTH} "
    '-d \'{"model": {"strategy_name": "rsi_single", "alias": "production"}}\' '
    f"{B} ktrdr.training.v1.Backend/GetModel"
)
SET_TAGS = (
    f".venv/bin/grpcurl -plaintext {AUTH} "
    '-d \'{"strategy_name": "rsi_single", "version": 1, "add": ["baseline"]}\' '
    f"{B} ktrdr.training.v1.Backend/SetModelTags"
)
LIST_MODELS_FILTERED = (
    f".venv/bin/grpcurl -plaintext {AUTH} "
    '-d \'{"tag": "baseline", "order_by": "test_accuracy", "descending": true, "page_size": 10}\' '
    f"{B} ktrdr.training.v1.Backend/ListModels"
)
DOWNLOAD_MODEL = (
    f".venv/bin/grpcurl -plaintext {AUTH} "
    '-d \'{"model": {"strategy_name": "rsi_single", "version": 1}, "codec": "CODEC_RAW"}\' '
    f"{B} ktrdr.training.v1.Backend/DownloadModel"
)
DELETE_ALIAS = (
    f".venv/bin/grpcurl -plaintext {AUTH} "
    '-d \'{"strategy_name": "rsi_single", "alias": "production"}\' '
    f"{B} ktrdr.training.v1.Backend/DeleteModelAlias"
)
DELETE_MODEL = (
    f".venv/bin/grpcurl -plaintext {AUTH} "
    '-d \'{"strategy_name": "rsi_single", "version": 1}\' '
    f"{B} ktrdr.training.v1.Backend/DeleteModel"
)
UNAUTHENTICATED = f".venv/bin/grpcurl -plaintext {B} ktrdr.training.v1.Backend/ListStrategies"
CAPABILITIES = (
    f".venv/bin/grpcurl -plaintext {HOST_AUTH} {H} ktrdr.training.v1.TrainingHost/GetCapabilities"
)
CREATE_SWEEP = (
    f".venv/bin/grpcurl -plaintext {AUTH} "
    '-d \'{"strategy_name": "rsi_single", "n_trials": 4, "parallelism": 2, "parameters": '
    '[{"path": "model.training.learning_rate", "float_range": {"low": 0.0001, "high": 0.1, '
    '"log": true}}, {"path": "model.architecture.activation", "choices": {"values": '
    '["relu", "tanh"]}}]}\' '
    f"{B} ktrdr.training.v1.Backend/CreateSweep"
)
GET_SWEEP = (
    f".venv/bin/grpcurl -plaintext {AUTH} "
    '-d \'{"sweep_id": "SWEEP_ID"}\' '
    f"{B} ktrdr.training.v1.Backend/GetSweep"
)
LIST_SWEEPS = f".venv/bin/grpcurl -plaintext {AUTH} {B} ktrdr.training.v1.Backend/ListSweeps"
LIST_HOSTS = f".venv/bin/grpcurl -plaintext {AUTH} {B} ktrdr.training.v1.Backend/ListHosts"

EXAMPLES = [
    LIST, LIST_METHODS, DESCRIBE, HEALTH, HOST_HEALTH, CREATE_BY_NAME, CREATE_INLINE, WATCH,
    GET_OPERATION, GET_CONFIG, UPDATE_CONFIG, LIST_MODELS, LIST_STRATEGIES, CAPABILITIES,
    UNAUTHENTICATED, SET_ALIAS, GET_MODEL, SET_TAGS, LIST_MODELS_FILTERED, DOWNLOAD_MODEL,
    DELETE_ALIAS, DELETE_MODEL, CREATE_SWEEP, GET_SWEEP, LIST_SWEEPS, LIST_HOSTS,
]  # fmt: skip


def strategies_for_services(root: Path) -> Path:
    """The ``services`` fixture's strategies: rsi_single with 3 epochs, to keep this fast."""
    reason = grpcurl_unusable()
    if reason:
        pytest.skip(reason)
    strategies = root / "strategies"
    strategies.mkdir()
    fast = yaml.safe_load((REPO / "examples/strategies/rsi_single.yaml").read_text())
    fast["model"]["training"]["epochs"] = 3
    (strategies / "rsi_single.yaml").write_text(yaml.safe_dump(fast))
    return strategies


def run_example(
    services: LocalServices, example: str, **replace: str
) -> subprocess.CompletedProcess[str]:
    command = example.replace(B, services.backend_address).replace(H, services.host_address)
    for key, value in replace.items():
        command = command.replace(key, value)
    env = {
        **os.environ,
        "TOKEN": services.admin_token or "",
        "HOST_TOKEN": services.host_token or "",
    }
    return subprocess.run(
        ["bash", "-c", command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=scaled(120),
        env=env,
    )


def grpcurl(services: LocalServices, example: str, **replace: str) -> str:
    done = run_example(services, example, **replace)
    assert done.returncode == 0, f"{example}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def watch_to_end(services: LocalServices, operation_id: str) -> list[dict]:
    out = grpcurl(services, WATCH, OPERATION_ID=operation_id)
    decoder, messages, text = json.JSONDecoder(), [], out.strip()
    while text:
        message, end = decoder.raw_decode(text)
        messages.append(message)
        text = text[end:].strip()
    return messages


def test_reflection_list_and_describe(services: LocalServices) -> None:
    listed = grpcurl(services, LIST).split()
    assert {"ktrdr.training.v1.Backend", "grpc.health.v1.Health"} <= set(listed)
    methods = grpcurl(services, LIST_METHODS)
    assert "ktrdr.training.v1.Backend.CreateTraining" in methods
    assert "strategy_yaml" in grpcurl(services, DESCRIBE)


def test_health_checks(services: LocalServices) -> None:
    assert json.loads(grpcurl(services, HEALTH))["status"] == "SERVING"
    assert json.loads(grpcurl(services, HOST_HEALTH))["status"] == "SERVING"


def test_create_by_name_watch_and_list_models(services: LocalServices) -> None:
    created = json.loads(grpcurl(services, CREATE_BY_NAME))["operation"]
    assert created["mode"] == "EXECUTION_MODE_HOST", created
    events = watch_to_end(services, created["operation_id"])
    assert events[-1]["event"]["kind"] == "PROGRESS_KIND_COMPLETED", events[-1]
    assert any(e["event"].get("kind") == "PROGRESS_KIND_EPOCH" for e in events)
    operation = json.loads(grpcurl(services, GET_OPERATION, OPERATION_ID=created["operation_id"]))
    assert operation["operation"]["status"] == "OPERATION_STATUS_COMPLETED"
    models = json.loads(grpcurl(services, LIST_MODELS))["strategies"]
    assert models[0]["strategy_name"] == "rsi_single" and models[0]["versions"]
    strategies = json.loads(grpcurl(services, LIST_STRATEGIES))["strategies"]
    assert any(s["name"] == "rsi_single" for s in strategies)


def test_create_inline_yaml(services: LocalServices) -> None:
    created = json.loads(grpcurl(services, CREATE_INLINE))["operation"]
    assert created["mode"] == "EXECUTION_MODE_LOCAL"
    # The inline strategy trains 30 epochs; cancel it rather than wait (cancel is not a README
    # example, the client covers it).
    from ktrdr.client import TrainingClient

    TrainingClient(services.backend_address, token=services.admin_token).cancel(
        created["operation_id"]
    )


def test_a_call_without_a_token_is_unauthenticated(services: LocalServices) -> None:
    done = run_example(services, UNAUTHENTICATED)
    assert done.returncode != 0
    assert "Unauthenticated" in done.stderr and "bearer token" in done.stderr, done.stderr


def test_training_config(services: LocalServices) -> None:
    before = json.loads(grpcurl(services, GET_CONFIG))["config"]
    assert before["default_mode"] == "EXECUTION_MODE_AUTO"
    assert services.host_address in before["host_addresses"]
    changed = json.loads(grpcurl(services, UPDATE_CONFIG))
    assert changed["previous_default_mode"] == "EXECUTION_MODE_AUTO"
    assert changed["default_mode"] == "EXECUTION_MODE_LOCAL"


def test_list_hosts(services: LocalServices) -> None:
    hosts = json.loads(grpcurl(services, LIST_HOSTS))["hosts"]
    listed = next(h for h in hosts if h["address"] == services.host_address)
    assert listed["state"] == "HOST_STATE_STATIC" and listed["joined"] == "HOST_JOIN_STATIC"
    assert listed["max_sessions"] >= 1 and listed["detail"].startswith("SERVING")


def test_host_capabilities(services: LocalServices) -> None:
    caps = json.loads(grpcurl(services, CAPABILITIES))
    assert caps["device_type"].startswith("DEVICE_TYPE_") and caps["max_sessions"] >= 1


def test_model_rpcs(services: LocalServices) -> None:
    import base64
    import hashlib

    from ktrdr.client import TrainingClient

    with TrainingClient(services.backend_address, token=services.admin_token) as client:
        result = client.train("rsi_single", mode="local", progress=False)
    assert result.model is not None
    version = {'"version": 1': f'"version": {result.model.version}'}
    aliased = json.loads(grpcurl(services, SET_ALIAS, **version))
    assert aliased["model"]["version"] == result.model.version
    model = json.loads(grpcurl(services, GET_MODEL))["model"]
    assert model["version"]["aliases"] == ["production"] and model["history"]
    assert json.loads(grpcurl(services, SET_TAGS, **version))["tags"] == ["baseline"]
    listed = json.loads(grpcurl(services, LIST_MODELS_FILTERED))["models"]
    assert [m["version"] for m in listed] == [result.model.version]
    out, decoder, parts = (
        grpcurl(services, DOWNLOAD_MODEL, **version).strip(),
        json.JSONDecoder(),
        [],
    )
    while out:
        message, end = decoder.raw_decode(out)
        parts.append(message)
        out = out[end:].strip()
    header = parts[0]["header"]
    data = b"".join(base64.b64decode(p["chunk"]["data"]) for p in parts if "chunk" in p)
    assert hashlib.sha256(data).hexdigest() == header["sha256"] and "trailer" in parts[-1]
    refused = run_example(services, DELETE_MODEL, **version)
    assert refused.returncode != 0 and "FailedPrecondition" in refused.stderr, refused.stderr
    assert json.loads(grpcurl(services, DELETE_ALIAS))["version"] == result.model.version
    deleted = json.loads(grpcurl(services, DELETE_MODEL, **version))
    assert deleted["model"]["version"] == result.model.version


def test_readme_grpcurl_lines_are_tested() -> None:
    readme = (REPO / "README.md").read_text()
    lines = [
        line.strip().rstrip("\\").strip()
        for line in readme.splitlines()
        if re.match(r"\s*(\.venv/bin/)?grpcurl |.*\| \.venv/bin/grpcurl ", line)
    ]
    if not lines:
        pytest.skip("README.md has no grpcurl examples yet")
    untested = [line for line in lines if line not in EXAMPLES]
    assert not untested, f"README grpcurl lines not in EXAMPLES: {untested}"


def test_examples_use_the_default_addresses() -> None:
    assert shutil.which("bash")
    for example in EXAMPLES:
        assert B in example or H in example


def test_create_get_and_list_sweeps(services: LocalServices) -> None:
    pytest.importorskip("optuna")
    created = json.loads(grpcurl(services, CREATE_SWEEP))["sweep"]
    assert created["status"] == "SWEEP_STATUS_RUNNING" and created["n_trials"] == 4
    sweep = json.loads(grpcurl(services, GET_SWEEP, SWEEP_ID=created["sweep_id"]))["sweep"]
    assert sweep["sweep_id"] == created["sweep_id"]
    listed = json.loads(grpcurl(services, LIST_SWEEPS))["sweeps"]
    assert created["sweep_id"] in [s["sweep_id"] for s in listed]
    # CancelSweep is not a README example; the client covers it.
    from ktrdr.client import TrainingClient

    client = TrainingClient(services.backend_address, token=services.admin_token)
    assert client.cancel_sweep(created["sweep_id"]).status == "cancelled"
