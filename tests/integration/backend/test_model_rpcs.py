"""The model RPCs through a real in-process backend (real SQLite, real model store, tokens)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import grpc
import pytest

from ktrdr.security.channels import aio_channel
from ktrdr.training.v1 import backend_pb2 as pb
from ktrdr.training.v1 import backend_pb2_grpc
from ktrdr.transfer import TransferError
from ktrdr.transfer.download import receive_download
from tests.support.models import put_model

S = "tiny_rsi"


def sel(version: int = 0, alias: str = "", strategy: str = S) -> pb.ModelSelector:
    return pb.ModelSelector(strategy_name=strategy, version=version, alias=alias)


async def status_of(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), info.value.details() or ""


async def stream_status(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    return info.value.code(), info.value.details() or ""


async def download(stub, path: Path, **request) -> pb.DownloadModelHeader:
    messages = [m async for m in stub.DownloadModel(pb.DownloadModelRequest(**request))]
    return receive_download(messages, path, max_raw_bytes=1 << 30)


async def test_get_model_details_lineage_and_unknown_models(backend, tiny_bundle):
    v1 = await put_model(backend, tiny_bundle, seed=11, owner="alice")
    v2 = await put_model(backend, tiny_bundle, host="10.1.2.3:50051")
    stub = backend.stub
    latest = (await stub.GetModel(pb.GetModelRequest(model=sel()))).model
    assert latest.version.version == v2 == 2
    assert latest.version.lineage.mode == pb.EXECUTION_MODE_HOST
    assert latest.version.lineage.host_address == "10.1.2.3:50051"
    first = (await stub.GetModel(pb.GetModelRequest(model=sel(v1)))).model
    lineage = first.version.lineage
    assert (lineage.seed, lineage.device, lineage.owner) == (11, "cpu", "alice")
    assert lineage.mode == pb.EXECUTION_MODE_LOCAL and lineage.duration_s == 1.5
    assert first.version.path == f"{S}/EURUSD_1h_v1"  # store-relative, never a server path
    assert str(backend.settings.data_dir) not in str(first)
    assert first.history and first.history[0].epoch == 1
    assert "train_loss" in first.history[0].metrics
    assert first.symbols == ["EURUSD"] and first.timeframes == ["1h"]
    assert first.size_bytes > 0 and first.feature_count > 0
    assert len(first.version.sha256) == 64
    for bad, code in (
        (sel(strategy="nope"), grpc.StatusCode.NOT_FOUND),
        (sel(9), grpc.StatusCode.NOT_FOUND),
        (sel(alias="production"), grpc.StatusCode.NOT_FOUND),
        (sel(1, "production"), grpc.StatusCode.INVALID_ARGUMENT),
        (sel(strategy="../etc"), grpc.StatusCode.INVALID_ARGUMENT),
        (sel(alias="Bad Alias"), grpc.StatusCode.INVALID_ARGUMENT),
    ):
        got, message = await status_of(stub.GetModel(pb.GetModelRequest(model=bad)))
        assert got == code, (bad, message)
    _, message = await status_of(stub.GetModel(pb.GetModelRequest(model=sel(9))))
    assert "stored: 1, 2" in message


@pytest.mark.parametrize("codec", [pb.CODEC_UNSPECIFIED, pb.CODEC_RAW, pb.CODEC_GZIP])
async def test_download_is_the_archive_verified(backend, tiny_bundle, tmp_path, codec):
    await put_model(backend, tiny_bundle)
    target = tmp_path / "m.tar"
    header = await download(backend.stub, target, model=sel(), codec=codec)
    data = target.read_bytes()
    assert data == tiny_bundle.to_archive_bytes()
    assert header.sha256 == hashlib.sha256(data).hexdigest()
    assert header.model.path == f"{S}/EURUSD_1h_v1"


async def test_interrupted_download_resumes_from_offset(backend, tiny_bundle, tmp_path):
    await put_model(backend, tiny_bundle)
    stub = backend.stub
    target = tmp_path / "m.tar"
    request = pb.DownloadModelRequest(model=sel(), codec=pb.CODEC_RAW, chunk_size_bytes=4096)
    call = stub.DownloadModel(request)
    received = []
    async for message in call:
        received.append(message)
        if len(received) == 4:  # header + 3 chunks, then the connection "breaks"
            call.cancel()
            break
    with pytest.raises(TransferError) as info:
        receive_download(received, target, max_raw_bytes=1 << 30)
    assert info.value.code == grpc.StatusCode.DATA_LOSS
    assert target.stat().st_size == 3 * 4096  # kept for the resume
    sha = received[0].header.sha256
    await download(
        stub, target, model=sel(), offset=3 * 4096, expected_sha256=sha, codec=pb.CODEC_ZSTD
    )
    assert target.read_bytes() == tiny_bundle.to_archive_bytes()


async def test_bad_download_requests(backend, tiny_bundle, tmp_path):
    await put_model(backend, tiny_bundle)
    stub = backend.stub
    size = len(tiny_bundle.to_archive_bytes())

    def call(**kw):
        return stream_status(stub.DownloadModel(pb.DownloadModelRequest(**kw)))

    assert (await call(model=sel(4)))[0] == grpc.StatusCode.NOT_FOUND
    assert (await call(model=sel(), offset=size + 1))[0] == grpc.StatusCode.OUT_OF_RANGE
    assert (await call(model=sel(), offset=-1))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert (await call(model=sel(), chunk_size_bytes=64 << 20))[0] == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    code, message = await call(model=sel(), expected_sha256="0" * 64)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "start the download again" in message
    # the whole archive already there: an empty tail, still verified
    target = tmp_path / "done.tar"
    target.write_bytes(tiny_bundle.to_archive_bytes())
    await download(stub, target, model=sel(), offset=size)
    # damaged on the server: DATA_LOSS, not a wrong model
    weights = backend.settings.models_dir / S / "EURUSD_1h_v1" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    code, message = await call(model=sel())
    assert code == grpc.StatusCode.DATA_LOSS and "recorded SHA-256" in message


async def test_corrupt_chunk_is_data_loss_and_not_kept(backend, tiny_bundle, tmp_path):
    await put_model(backend, tiny_bundle)
    for codec in (pb.CODEC_RAW, pb.CODEC_ZSTD, pb.CODEC_GZIP):
        request = pb.DownloadModelRequest(model=sel(), codec=codec, chunk_size_bytes=8192)
        messages = [m async for m in backend.stub.DownloadModel(request)]
        data = bytearray(messages[1].chunk.data)
        data[100] ^= 0xFF
        messages[1].chunk.data = bytes(data)
        target = tmp_path / f"bad-{codec}.tar"
        with pytest.raises(TransferError) as info:
            receive_download(messages, target, max_raw_bytes=1 << 30)
        assert info.value.code == grpc.StatusCode.DATA_LOSS
        assert not target.exists()
        # a chunk out of order
        messages = [m async for m in backend.stub.DownloadModel(request)]
        messages[1], messages[2] = messages[2], messages[1]
        with pytest.raises(TransferError) as info:
            receive_download(messages, target, max_raw_bytes=1 << 30)
        assert info.value.code == grpc.StatusCode.DATA_LOSS


async def test_delete_while_downloading_and_aliased_delete(backend, tiny_bundle, tmp_path):
    await put_model(backend, tiny_bundle)
    await put_model(backend, tiny_bundle)
    stub = backend.stub
    request = pb.DownloadModelRequest(model=sel(1), codec=pb.CODEC_RAW, chunk_size_bytes=4096)
    call = stub.DownloadModel(request)
    stream = aiter(call)
    received = [await anext(stream), await anext(stream)]
    deleted = await stub.DeleteModel(pb.DeleteModelRequest(strategy_name=S, version=1))
    assert deleted.model.version == 1 and not deleted.removed_aliases
    received += [m async for m in stream]  # the download in flight completes, verified
    receive_download(received, tmp_path / "v1.tar", max_raw_bytes=1 << 30)
    assert (tmp_path / "v1.tar").read_bytes() == tiny_bundle.to_archive_bytes()
    assert (await stream_status(stub.DownloadModel(request)))[0] == grpc.StatusCode.NOT_FOUND
    strategy_dir = backend.settings.models_dir / S
    assert sorted(p.name for p in strategy_dir.iterdir() if not p.name.startswith(".")) == [
        "EURUSD_1h_v2"
    ]
    assert not list((backend.settings.models_dir / ".trash").iterdir())
    # an aliased version is refused unless forced; force removes its aliases too
    await stub.SetModelAlias(
        pb.SetModelAliasRequest(strategy_name=S, alias="production", version=2)
    )
    code, message = await status_of(
        stub.DeleteModel(pb.DeleteModelRequest(strategy_name=S, version=2))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "production" in message
    assert (strategy_dir / "EURUSD_1h_v2").is_dir()
    forced = await stub.DeleteModel(pb.DeleteModelRequest(strategy_name=S, version=2, force=True))
    assert list(forced.removed_aliases) == ["production"]
    assert (await status_of(stub.GetModel(pb.GetModelRequest(model=sel()))))[0] == (
        grpc.StatusCode.NOT_FOUND
    )
    for bad, code in (
        (pb.DeleteModelRequest(strategy_name=S, version=2), grpc.StatusCode.NOT_FOUND),
        (pb.DeleteModelRequest(strategy_name=S), grpc.StatusCode.INVALID_ARGUMENT),
    ):
        assert (await status_of(stub.DeleteModel(bad)))[0] == code
    # a deleted version's number is never given out again
    assert await put_model(backend, tiny_bundle) == 3


async def test_rows_of_older_versions_are_read_and_deleted(backend, tiny_bundle, tmp_path):
    """Rows written by older backends: an absolute path (absolute data dir), and a path
    relative to the working directory of the time with the models root in it (relative data
    dir), which used to be joined to the root again. Each is shown, downloaded and deleted
    (its files gone) like a row of today."""
    forms = {
        1: lambda stored: str(stored.path),
        2: lambda stored: f".ktrdr/backend/models/{stored.reference}",
        3: lambda stored: f"/elsewhere/old-data/models/{stored.reference}",  # data dir moved
        4: lambda stored: stored.reference,
    }
    for version, form in forms.items():
        assert await put_model(backend, tiny_bundle, recorded=form) == version
    stub = backend.stub
    root = backend.settings.models_dir
    for version in forms:
        details = (await stub.GetModel(pb.GetModelRequest(model=sel(version)))).model
        assert details.version.path == f"{S}/EURUSD_1h_v{version}"
        assert details.size_bytes > 0 and details.history
        header = await download(stub, tmp_path / f"v{version}.tar", model=sel(version))
        assert header.model.path == f"{S}/EURUSD_1h_v{version}"
        assert (tmp_path / f"v{version}.tar").read_bytes() == tiny_bundle.to_archive_bytes()
        await stub.DeleteModel(pb.DeleteModelRequest(strategy_name=S, version=version))
        assert not (root / S / f"EURUSD_1h_v{version}").exists()
    assert not [p for p in (root / S).iterdir() if not p.name.startswith(".")]
    assert not list((root / ".trash").iterdir())


async def test_aliases_move_atomically_and_filter(backend, tiny_bundle):
    for _ in range(3):
        await put_model(backend, tiny_bundle)
    stub = backend.stub

    def set_alias(alias: str, version: int):
        return stub.SetModelAlias(
            pb.SetModelAliasRequest(strategy_name=S, alias=alias, version=version)
        )

    assert (await set_alias("production", 1)).previous_version == 0
    await set_alias("candidate", 3)
    moved = await set_alias("production", 2)
    assert moved.previous_version == 1 and moved.model.version == 2
    got = (await stub.GetModel(pb.GetModelRequest(model=sel(alias="production")))).model
    assert got.version.version == 2 and list(got.version.aliases) == ["production"]
    listed = await stub.ListModels(pb.ListModelsRequest(alias="candidate"))
    assert [m.version for m in listed.models] == [3]
    code, message = await status_of(set_alias("production", 7))
    assert code == grpc.StatusCode.NOT_FOUND and "has no version 7; stored: 1, 2, 3" in message
    for alias in ("latest", "Prod", "", "x" * 41):
        assert (await status_of(set_alias(alias, 1)))[0] == grpc.StatusCode.INVALID_ARGUMENT
    removed = await stub.DeleteModelAlias(
        pb.DeleteModelAliasRequest(strategy_name=S, alias="production")
    )
    assert removed.version == 2
    again = stub.DeleteModelAlias(pb.DeleteModelAliasRequest(strategy_name=S, alias="production"))
    assert (await status_of(again))[0] == grpc.StatusCode.NOT_FOUND


async def test_tags_order_and_paging(backend, tiny_bundle):
    for accuracy in (0.5, 0.7, 0.6):
        await put_model(backend, tiny_bundle, accuracy=accuracy)
    stub = backend.stub
    tagged = await stub.SetModelTags(
        pb.SetModelTagsRequest(strategy_name=S, version=2, add=["best", "eurusd"])
    )
    assert list(tagged.tags) == ["best", "eurusd"]
    tagged = await stub.SetModelTags(
        pb.SetModelTagsRequest(strategy_name=S, version=2, remove=["eurusd", "absent"])
    )
    assert list(tagged.tags) == ["best"]
    assert [
        m.version for m in (await stub.ListModels(pb.ListModelsRequest(tag="best"))).models
    ] == [2]
    for bad in (
        pb.SetModelTagsRequest(strategy_name=S, version=2, add=["no spaces"]),
        pb.SetModelTagsRequest(strategy_name=S, version=2),
        pb.SetModelTagsRequest(strategy_name=S, version=2, add=[f"t{i}" for i in range(40)]),
    ):
        assert (await status_of(stub.SetModelTags(bad)))[0] == grpc.StatusCode.INVALID_ARGUMENT
    missing = pb.SetModelTagsRequest(strategy_name=S, version=9, add=["x"])
    assert (await status_of(stub.SetModelTags(missing)))[0] == grpc.StatusCode.NOT_FOUND

    ordered = await stub.ListModels(pb.ListModelsRequest(order_by="test_accuracy", descending=True))
    assert [m.version for m in ordered.models] == [2, 3, 1]
    pages, token = [], ""
    while True:
        page = await stub.ListModels(
            pb.ListModelsRequest(order_by="test_accuracy", page_size=2, page_token=token)
        )
        pages.append([m.version for m in page.models])
        token = page.next_page_token
        if not token:
            break
    assert pages == [[1, 3], [2]]
    plain = await stub.ListModels(pb.ListModelsRequest(strategy_name=S))
    assert [v.version for v in plain.strategies[0].versions] == [1, 2, 3]
    assert all(not v.path.startswith("/") for v in plain.models)
    bad_token = stub.ListModels(pb.ListModelsRequest(page_token="garbage"))
    assert (await status_of(bad_token))[0] == grpc.StatusCode.INVALID_ARGUMENT


async def test_tags_given_at_create_training(backend):
    stub = backend.stub
    bad = pb.CreateTrainingRequest(strategy_name=S, tags=["bad tag"])
    assert (await status_of(stub.CreateTraining(bad)))[0] == grpc.StatusCode.INVALID_ARGUMENT
    created = await stub.CreateTraining(
        pb.CreateTrainingRequest(strategy_name=S, tags=["baseline", "ci"])
    )
    async for _ in stub.WatchOperation(
        pb.WatchOperationRequest(operation_id=created.operation.operation_id)
    ):
        pass
    model = (await stub.GetModel(pb.GetModelRequest(model=sel()))).model
    assert list(model.version.tags) == ["baseline", "ci"]
    assert model.version.lineage.operation_id == created.operation.operation_id
    # a tag removed later stays removed
    await stub.SetModelTags(pb.SetModelTagsRequest(strategy_name=S, version=1, remove=["ci"]))
    model = (await stub.GetModel(pb.GetModelRequest(model=sel()))).model
    assert list(model.version.tags) == ["baseline"]


async def test_roles_owner_or_admin_changes_models(backend, tiny_bundle, tmp_path):
    tokens = backend.app.tokens
    alice = await asyncio.to_thread(tokens.create, "alice", "trainer")
    bob = await asyncio.to_thread(tokens.create, "bob", "trainer")
    viewer = await asyncio.to_thread(tokens.create, "watcher", "viewer")
    await put_model(backend, tiny_bundle, owner="alice")
    address = f"127.0.0.1:{backend.app.port}"
    channels = {
        n: aio_channel(address, token=t)
        for n, t in (("alice", alice), ("bob", bob), ("viewer", viewer))
    }
    try:
        stubs = {n: backend_pb2_grpc.BackendStub(c) for n, c in channels.items()}
        # readers download
        await download(stubs["viewer"], tmp_path / "v.tar", model=sel())
        alias = pb.SetModelAliasRequest(strategy_name=S, alias="production", version=1)
        tag = pb.SetModelTagsRequest(strategy_name=S, version=1, add=["x"])
        delete = pb.DeleteModelRequest(strategy_name=S, version=1)
        for name in ("viewer", "bob"):
            stub = stubs[name]
            for call in (
                stub.SetModelAlias(alias),
                stub.SetModelTags(tag),
                stub.DeleteModel(delete),
            ):
                code, message = await status_of(call)
                assert code == grpc.StatusCode.PERMISSION_DENIED, (name, message)
        _, message = await status_of(stubs["bob"].DeleteModel(delete))
        assert "alice" in message and "admin" in message
        await stubs["alice"].SetModelAlias(alias)
        await stubs["alice"].SetModelTags(tag)
        # bob may not move alice's alias onto his own model either
        bobs = await put_model(backend, tiny_bundle, owner="bob")
        move = pb.SetModelAliasRequest(strategy_name=S, alias="production", version=bobs)
        code, message = await status_of(stubs["bob"].SetModelAlias(move))
        assert code == grpc.StatusCode.PERMISSION_DENIED and "move an alias" in message
        await backend.stub.DeleteModel(  # the admin
            pb.DeleteModelRequest(strategy_name=S, version=1, force=True)
        )
    finally:
        for channel in channels.values():
            await channel.close()


async def test_delete_of_a_version_whose_files_are_gone_says_so(backend, tiny_bundle, caplog):
    import logging
    import shutil

    await put_model(backend, tiny_bundle)
    shutil.rmtree(backend.settings.models_dir / S / "EURUSD_1h_v1")
    with caplog.at_level(logging.WARNING, logger="ktrdr.backend.models.catalog"):
        await backend.stub.DeleteModel(pb.DeleteModelRequest(strategy_name=S, version=1))
    assert "no files at" in caplog.text and "already gone" in caplog.text
    assert (await status_of(backend.stub.GetModel(pb.GetModelRequest(model=sel(1)))))[0] == (
        grpc.StatusCode.NOT_FOUND
    )
