"""``ktrdr models ...`` and ``ktrdr predict MODEL`` against live services, run from a working
directory that is not the backend's (no access to its model store) with an explicit token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ktrdr.client import KtrdrServiceError, LocalServices
from tests.support.timing import scaled

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
S = "tiny_rsi"


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("laptop")


def ktrdr(
    services: LocalServices, cwd: Path, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KTRDR_")}
    env.update(
        KTRDR_BACKEND_ADDRESS=services.backend_address,
        KTRDR_TOKEN=services.admin_token or "",
        KTRDR_CACHE_DIR=str(cwd / "cache"),
    )
    return subprocess.run(
        [sys.executable, "-m", "ktrdr.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
    )


def one_line_error(done: subprocess.CompletedProcess, *needles: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_models_commands_from_another_machine(services, elsewhere, tiny_strategy_yaml) -> None:
    strategy = elsewhere / "tiny.yaml"
    strategy.write_text(tiny_strategy_yaml)
    for extra in (["--tag", "baseline", "--seed", "3"], ["--seed", "4"]):
        done = ktrdr(services, elsewhere, "train", str(strategy), "--mode", "local", *extra)
        assert done.returncode == 0, done.stderr

    listed = json.loads(ktrdr(services, elsewhere, "models", "list", "--json").stdout)
    mine = [m for m in listed if m["strategy"] == S]
    edges = [m["test_metrics"]["val_accuracy_edge"] for m in mine]
    assert edges == sorted(edges, reverse=True)  # the default order: best validation edge
    mine.sort(key=lambda m: m["version"])
    assert [m["version"] for m in mine] == [1, 2]
    assert mine[0]["tags"] == ["baseline"] and mine[1]["tags"] == []
    assert (mine[0]["seed"], mine[0]["mode"], mine[0]["device"]) == (3, "local", "cpu")
    assert all(not m["path"].startswith("/") for m in mine)
    table = ktrdr(services, elsewhere, "models", "list", "--sort", "test_accuracy").stdout
    assert table.splitlines()[0].split()[:8] == [
        "STRATEGY", "VERSION", "ALIASES", "TAGS", "OPERATION", "SEED", "MODE", "DEVICE",
    ]  # fmt: skip

    done = ktrdr(services, elsewhere, "models", "alias", f"{S}:1", "production")
    assert done.returncode == 0 and "-> version 1" in done.stdout, done.stderr
    done = ktrdr(services, elsewhere, "models", "alias", f"{S}:2", "production")
    assert "moved from version 1" in done.stdout, done.stderr
    one_line_error(
        ktrdr(services, elsewhere, "models", "alias", f"{S}:9", "candidate"), "has no version 9"
    )
    done = ktrdr(services, elsewhere, "models", "tag", f"{S}@production", "best")
    assert "tags: best" in done.stdout, done.stderr

    shown = ktrdr(services, elsewhere, "models", "show", f"{S}@production")
    assert shown.returncode == 0, shown.stderr
    assert "aliases     production" in shown.stdout and "BUY" in shown.stdout
    out = elsewhere / "prod-model"
    done = ktrdr(services, elsewhere, "models", "download", f"{S}@production", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "metadata.json").is_file() and (out / "weights.safetensors").is_file()
    signals = elsewhere / "signals.csv"
    done = ktrdr(
        services,
        elsewhere,
        "predict",
        f"{S}@production",
        "--data",
        str(REPO / "data" / "samples" / "EURUSD_1h.csv"),
        "--out",
        str(signals),
    )
    assert done.returncode == 0, done.stderr
    assert signals.read_text().startswith("timestamp")

    one_line_error(
        ktrdr(services, elsewhere, "models", "delete", f"{S}:2"), "production", "--force"
    )
    done = ktrdr(services, elsewhere, "models", "delete", f"{S}:2", "--force")
    assert done.returncode == 0 and "aliases removed: production" in done.stdout, done.stderr
    one_line_error(ktrdr(services, elsewhere, "models", "show", "no_such_strategy"), "no stored")
    one_line_error(ktrdr(services, elsewhere, "models", "show", f"{S}@production"), "no alias")
    one_line_error(ktrdr(services, elsewhere, "models", "show", "bad ref!"), "STRATEGY:VERSION")


def test_client_download_cache_and_bad_partial_file(services, elsewhere, tmp_path) -> None:
    with services.client() as client:
        if not client.models(S):
            client.train(S, mode="local", progress=False)
        info = client.models(S)[-1]
        cache = tmp_path / "cache"
        cache.mkdir()
        # a partial file left by an interrupted download of this model, with wrong bytes:
        # the resumed tail fails the hash check, the client starts again from 0 and succeeds
        (cache / f"{info.sha256}.tar.part").write_bytes(b"\x00" * 1000)
        path = client.download_model(info, cache_dir=cache)
        assert path == cache / info.sha256 and (path / "metadata.json").is_file()
        assert not (cache / f"{info.sha256}.tar.part").exists()
        assert client.download_model(info.name, cache_dir=cache) == path  # from the cache
        details = client.get_model(info.name)
        assert details.history and details.info.sha256 == info.sha256
        with pytest.raises(KtrdrServiceError) as failed:
            client.get_model(f"{S}:999")
        assert failed.value.code.name == "NOT_FOUND"
