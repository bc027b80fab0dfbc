"""The spool: atomic entries, listing after a restart, deletion, quarantine of refused models."""

from __future__ import annotations

import json
from pathlib import Path

from ktrdr.storage.bundle import ModelBundle
from ktrdr.training.result import TrainingResult
from ktrdr.transfer import sha256_file
from ktrdr_host.spool import Spool, SpoolEntry, entry_key


def put(spool: Spool, result: TrainingResult, session_id: str = "op-1") -> SpoolEntry:
    return spool.put(
        result.bundle,
        session_id=session_id,
        results_target="127.0.0.1:50052",
        device="cpu",
        duration_s=1.5,
        metrics={"test_accuracy": 0.5},
        summary={"model_type": "mlp", "feature_count": 5, "seed": 7},
    )


def test_put_writes_archive_and_sidecar(tmp_path: Path, tiny_result: TrainingResult) -> None:
    spool = Spool(tmp_path)
    entry = put(spool, tiny_result)
    assert entry.archive.is_file()
    assert entry.sha256 == sha256_file(entry.archive)
    assert entry.size_bytes == entry.archive.stat().st_size
    ModelBundle.from_archive(entry.archive).validate()
    sidecar = json.loads((tmp_path / f"{entry.key}.json").read_text())
    assert sidecar["session_id"] == "op-1"
    assert sidecar["results_target"] == "127.0.0.1:50052"
    assert sidecar["strategy_name"] == "tiny_rsi"
    assert sidecar["sha256"] == entry.sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["failed", f"{entry.key}.json", f"{entry.key}.tar"]
    )


def test_a_new_spool_finds_the_entries(tmp_path: Path, tiny_result: TrainingResult) -> None:
    first = put(Spool(tmp_path), tiny_result, "op-1")
    second = put(Spool(tmp_path), tiny_result, "op/2 weird")
    found = Spool(tmp_path).entries()  # as a restarted host sees it
    assert [e.session_id for e in found] == ["op-1", "op/2 weird"]
    assert found[0] == first
    assert found[1].archive == second.archive
    assert Spool(tmp_path).verify(found[0])


def test_leftovers_of_interrupted_writes_are_removed(
    tmp_path: Path, tiny_result: TrainingResult
) -> None:
    spool = Spool(tmp_path)
    entry = put(spool, tiny_result)
    (tmp_path / ".tmp-op-9-abc.tar").write_bytes(b"partial")
    (tmp_path / f"{entry_key('op-9')}.tar").write_bytes(b"no sidecar: never committed")
    assert [e.session_id for e in spool.entries()] == ["op-1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["failed", f"{entry.key}.json", f"{entry.key}.tar"]
    )


def test_unreadable_sidecar_is_quarantined(tmp_path: Path, tiny_result: TrainingResult) -> None:
    spool = Spool(tmp_path)
    entry = put(spool, tiny_result)
    (tmp_path / f"{entry.key}.json").write_text("{not json")
    assert spool.entries() == []
    assert sorted(p.name for p in (tmp_path / "failed").iterdir()) == sorted(
        [f"{entry.key}.json", f"{entry.key}.tar"]
    )


def test_delete_and_mark_failed(tmp_path: Path, tiny_result: TrainingResult) -> None:
    spool = Spool(tmp_path)
    delivered = put(spool, tiny_result, "op-1")
    refused = put(spool, tiny_result, "op-2")
    spool.delete(delivered)
    sidecar = spool.mark_failed(refused, "INVALID_ARGUMENT: bad bundle")
    assert spool.entries() == []
    assert json.loads(sidecar.read_text())["failed_reason"] == "INVALID_ARGUMENT: bad bundle"
    assert (tmp_path / "failed" / refused.archive.name).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["failed"]


def test_verify_detects_a_damaged_archive(tmp_path: Path, tiny_result: TrainingResult) -> None:
    spool = Spool(tmp_path)
    entry = put(spool, tiny_result)
    data = bytearray(entry.archive.read_bytes())
    data[-100] ^= 0xFF
    entry.archive.write_bytes(bytes(data))
    assert not spool.verify(entry)


def test_entry_keys_are_safe_and_distinct() -> None:
    assert entry_key("op-1").startswith("op-1-")
    assert "/" not in entry_key("../../etc/passwd")
    assert not entry_key("../x").startswith(".")
    assert entry_key("a/b") != entry_key("a_b")
