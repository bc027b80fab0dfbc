"""Bundle format and versioned ModelStorage."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from pathlib import Path

import pytest

from ktrdr.errors import BundleError, StorageError
from ktrdr.storage import ModelBundle, ModelStorage
from ktrdr.storage.bundle import FORMAT_VERSION


def make_bundle(name: str = "demo", symbols=("EURUSD",), timeframes=("1h",)) -> ModelBundle:
    import torch

    return ModelBundle(
        weights={
            "model.net.0.weight": torch.arange(6, dtype=torch.float32).reshape(3, 2),
            "scaler.mean": torch.zeros(2),
            "scaler.scale": torch.ones(2),
        },
        metadata={
            "format_version": FORMAT_VERSION,
            "strategy_name": name,
            "strategy": {"name": name},
            "symbols": list(symbols),
            "timeframes": list(timeframes),
            "feature_names": ["a", "b"],
            "model": {},
            "labels": {},
            "metrics": {"summary": {"test_accuracy": 0.5}},
            "created_at": "2026-11-28T00:00:00+00:00",
        },
    )


def test_write_read_round_trip(tmp_path: Path):
    import torch

    bundle = make_bundle()
    bundle.write(tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "metadata.json",
        "weights.safetensors",
    ]
    again = ModelBundle.read(tmp_path / "b")
    assert again.metadata == bundle.metadata
    assert torch.equal(again.weights["model.net.0.weight"], bundle.weights["model.net.0.weight"])


def test_archive_is_deterministic_and_round_trips(tmp_path: Path):
    a, b = make_bundle().to_archive_bytes(), make_bundle().to_archive_bytes()
    assert a == b
    (tmp_path / "x.tar").write_bytes(a)
    assert ModelBundle.from_archive(tmp_path / "x.tar").metadata["strategy_name"] == "demo"


def _tar(members: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo(symlink)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return buf.getvalue()


@pytest.mark.parametrize(
    "case",
    [
        "extra",
        "traversal",
        "symlink",
        "missing",
        "not_tar",
        "bad_json",
        "bad_weights",
        "incomplete_meta",
    ],
)
def test_bad_archives_are_rejected(tmp_path: Path, case: str):
    good = {}
    with tarfile.open(fileobj=io.BytesIO(make_bundle().to_archive_bytes())) as tar:
        for m in tar:
            fh = tar.extractfile(m)
            assert fh is not None
            good[m.name] = fh.read()
    meta = json.loads(good["metadata.json"])
    del meta["feature_names"]
    data = {
        "extra": _tar({**good, "run.py": b"print(1)"}),
        "traversal": _tar({**good, "../../evil": b"x"}),
        "symlink": _tar(good, symlink="weights2"),
        "missing": _tar({"metadata.json": good["metadata.json"]}),
        "not_tar": b"this is not a tar archive at all" * 40,
        "bad_json": _tar({**good, "metadata.json": b"{nope"}),
        "bad_weights": _tar({**good, "weights.safetensors": b"\x00" * 64}),
        "incomplete_meta": _tar({**good, "metadata.json": json.dumps(meta).encode()}),
    }[case]
    path = tmp_path / "x.tar"
    path.write_bytes(data)
    with pytest.raises(BundleError):
        ModelBundle.from_archive(path)
    assert not (tmp_path / "evil").exists()


def test_versions_increase_and_latest_resolves(tmp_path: Path):
    storage = ModelStorage(tmp_path)
    first = storage.save(make_bundle())
    second = storage.save(make_bundle(symbols=("EURUSD", "GOOG")))
    assert first.path == tmp_path / "demo" / "EURUSD_1h_v1"
    assert second.path == tmp_path / "demo" / "EURUSD+GOOG_1h_v2"
    assert storage.latest("demo").version == 2  # type: ignore[union-attr]
    assert storage.get("demo", 1).path == first.path
    assert [m.version for m in storage.list_models("demo")] == [1, 2]
    assert storage.strategies() == ["demo"]
    assert storage.latest("other") is None
    with pytest.raises(StorageError, match="no version 9"):
        storage.get("demo", 9)


def test_concurrent_saves_get_distinct_versions(tmp_path: Path):
    storage = ModelStorage(tmp_path)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(storage.save(make_bundle())))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.version for r in results) == list(range(1, 9))
    assert len({r.path for r in results}) == 8


def test_failed_save_leaves_nothing_half_written(tmp_path: Path, monkeypatch):
    storage = ModelStorage(tmp_path)

    def boom(self, directory):
        directory.mkdir(parents=True)
        (directory / "metadata.json").write_text("{}")
        raise OSError("disk full")

    monkeypatch.setattr(ModelBundle, "write", boom)
    with pytest.raises(OSError):
        storage.save(make_bundle())
    leftovers = [p.name for p in (tmp_path / "demo").iterdir() if p.name != ".lock"]
    assert leftovers == []
    assert storage.list_models() == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "../escape"},
        {"name": "a/b"},
        {"name": ".."},
        {"name": ""},
        {"symbols": ("../X",)},
        {"symbols": ("eur/usd",)},
        {"timeframes": ("1h/../..",)},
    ],
)
def test_names_cannot_escape_the_models_directory(tmp_path: Path, kwargs):
    storage = ModelStorage(tmp_path / "models")
    with pytest.raises(StorageError):
        storage.save(make_bundle(**kwargs))
    assert list(tmp_path.iterdir()) in ([], [tmp_path / "models"])


def test_origin_lets_a_caller_find_an_earlier_save(tmp_path: Path):
    storage = ModelStorage(tmp_path)
    assert storage.find_by_origin("demo", operation_id="op-1") is None
    first = storage.save(make_bundle(), origin={"operation_id": "op-1", "sha256": "aa"})
    storage.save(make_bundle(), origin={"operation_id": "op-2", "sha256": "bb"})
    storage.save(make_bundle())  # no origin
    found = storage.find_by_origin("demo", operation_id="op-1", sha256="aa")
    assert found is not None and found.path == first.path
    assert storage.find_by_origin("demo", operation_id="op-1", sha256="zz") is None
    assert json.loads((first.path / "origin.json").read_text())["operation_id"] == "op-1"


def test_locate_model_reads_every_recorded_form(tmp_path):
    """One resolver for recorded model paths: store-relative, absolute, relative with the old
    root in front (older backends); anything that is not ``strategy/NAME_vN`` is refused."""
    from ktrdr.storage import locate_model

    root = tmp_path / "models"
    want = root / "rsi_single" / "EURUSD_1h_v3"
    for recorded in (
        "rsi_single/EURUSD_1h_v3",
        str(want),
        ".ktrdr/backend/models/rsi_single/EURUSD_1h_v3",
        "/old/place/models/rsi_single/EURUSD_1h_v3",
    ):
        assert locate_model(root, recorded) == want
    for bad in ("", "EURUSD_1h_v3", "rsi_single/..", "../EURUSD_1h_v3", "x/../../etc", "a/b"):
        with pytest.raises(StorageError):
            locate_model(root, bad)
