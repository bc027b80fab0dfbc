"""Token discovery on this machine: services record their token files by port; paths in the
services' settings are made absolute once, at start."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from ktrdr.backend.settings import BackendSettings
from ktrdr.client.connection import resolve_token
from ktrdr.security import local_records
from ktrdr.security.tokens import write_token_file
from ktrdr_host.settings import HostSettings


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch) -> Path:
    path = tmp_path / "run"
    monkeypatch.setenv("KTRDR_RUNTIME_DIR", str(path))
    for name in ("KTRDR_TOKEN", "KTRDR_TOKEN_FILE", "KTRDR_BACKEND_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_client_reads_the_token_its_backend_announced(runtime, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_token_file(tmp_path / ".ktrdr/backend/admin.token", "stale")
    assert resolve_token("127.0.0.1:7001") == "stale"  # nothing announced: the old default
    data = tmp_path / "elsewhere"
    write_token_file(data / "admin.token", "fresh")
    record = local_records.announce("127.0.0.1:7001", "backend", {"admin": data / "admin.token"})
    assert record is not None and (record.stat().st_mode & 0o777) == 0o600
    assert "fresh" not in record.read_text()  # paths, never tokens
    assert resolve_token("127.0.0.1:7001") == "fresh"
    assert resolve_token("localhost:7001") == "fresh"
    assert resolve_token("127.0.0.1:7002") == "stale"  # another port: its own record or none
    assert resolve_token("10.0.0.5:7001") is None  # never for another machine
    local_records.withdraw("127.0.0.1:7001")
    assert resolve_token("127.0.0.1:7001") == "stale"


def test_a_record_of_a_dead_process_or_another_service_is_ignored(runtime, tmp_path):
    local_records.announce("127.0.0.1:7003", "host", {"auth": tmp_path / "auth.token"})
    assert local_records.announced_token_file("127.0.0.1:7003", "backend", "admin") is None
    assert local_records.announced_token_file("127.0.0.1:7003", "host", "auth") == (
        tmp_path / "auth.token"
    )
    path = runtime / "port-7003.json"
    record = json.loads(path.read_text())
    record["pid"] = 2**22 + 12345  # above any pid_max: no such process
    path.write_text(json.dumps(record))
    assert local_records.announced_token_file("127.0.0.1:7003", "host", "auth") is None
    local_records.withdraw("127.0.0.1:7003")  # not ours: kept
    assert path.exists()


def test_peers_token_files_follow_the_announcement(runtime, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    write_token_file(tmp_path / ".ktrdr-host/auth.token", "stale-host")
    write_token_file(tmp_path / ".ktrdr/backend/host.token", "stale-backend")
    write_token_file(tmp_path / "h/auth.token", "host-token")
    write_token_file(tmp_path / "b/host.token", "host-role")
    backend = BackendSettings(_env_file=None).absolute()
    host = HostSettings(_env_file=None).absolute()
    assert backend.host_token_source("127.0.0.1:7010")() == "stale-host"  # nothing announced
    local_records.announce("127.0.0.1:7010", "host", {"auth": tmp_path / "h/auth.token"})
    local_records.announce("127.0.0.1:7011", "backend", {"host": tmp_path / "b/host.token"})
    with caplog.at_level(logging.INFO, logger="ktrdr.security.settings"):
        assert backend.host_token_source("127.0.0.1:7010")() == "host-token"
        assert backend.host_token_source("127.0.0.1:7010")() == "host-token"
    assert host.backend_token_source("127.0.0.1:7011")() == "host-role"
    assert host.backend_token_source()() == "stale-backend"  # no target: the default file
    used = [r.getMessage() for r in caplog.records if "h/auth.token" in r.getMessage()]
    assert len(used) == 1, used  # each file used is logged once
    # explicit settings win over discovery
    explicit = BackendSettings(_env_file=None, host_token_file=tmp_path / "b/host.token")
    assert explicit.host_token_source("127.0.0.1:7010")() == "host-role"


def test_every_path_setting_is_made_absolute_once(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    settings = BackendSettings(
        _env_file=None,
        data_dir=Path("state"),
        tls_ca=Path("ca.pem"),
        mlflow_tracking_uri="sqlite:///mlflow.db",
        mlflow_artifact_location="artifacts",
    ).absolute()
    host = HostSettings(_env_file=None, spool_dir=Path("spool/s")).absolute()
    os.chdir("/")  # a later change of directory changes nothing
    assert settings.data_dir == tmp_path / "state"
    assert settings.models_dir == tmp_path / "state" / "models"
    assert settings.strategies_dir == tmp_path / "examples" / "strategies"
    assert settings.tls_ca == tmp_path / "ca.pem"
    assert settings.mlflow_tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"
    assert settings.mlflow_artifact_location == str(tmp_path / "artifacts")
    assert host.token_file == tmp_path / "spool" / "auth.token"
    assert host.data_dir == tmp_path / "data" / "samples"
    with caplog.at_level(logging.INFO, logger="ktrdr.security.settings"):
        settings.log_paths("backend")
    assert f"data_dir={tmp_path / 'state'}" in caplog.text
