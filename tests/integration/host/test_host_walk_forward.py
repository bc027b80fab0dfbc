"""Walk-forward training on a real host process: its fold progress is streamed and the
delivered bundle carries the folds."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from ktrdr.training.v1 import common_pb2 as K
from tests.integration.host.host_processes import HostProcess
from tests.integration.host.test_host_process import (
    delivered,
    start_request,
    stub_for,
    wait_session,
)
from tests.support.receiving_backend import start_backend
from tests.support.timing import scaled

pytestmark = pytest.mark.integration


async def test_walk_forward_on_a_host(
    shared_host: HostProcess, tmp_path: Path, tiny_strategy_yaml: str
) -> None:
    yaml = tiny_strategy_yaml.replace("epochs: 4", "epochs: 1") + (
        "evaluation: {walk_forward: {folds: 2, window: rolling}}\n"
    )
    backend = await start_backend(tmp_path / "backend")
    channel, stub = stub_for(shared_host)
    try:
        request = start_request(yaml, backend.address, "wf-1")
        events = [r.event async for r in stub.StartTraining(request, timeout=scaled(180))]
        assert events[-1].kind == K.PROGRESS_KIND_COMPLETED, events[-1]
        starts = [e.message for e in events if e.kind == K.PROGRESS_KIND_STEP_STARTED]
        folds = [m.split(":")[0] for m in starts if m.startswith("walk-forward fold")]
        assert folds == ["walk-forward fold 1/2", "walk-forward fold 2/2"]
        assert events[-1].result.metrics["wf_folds"] == 2
        await wait_session(stub, "wf-1", delivered, timeout=scaled(30))
    finally:
        await channel.close()
        await backend.stop()
    _, stored = backend.backend.models["wf-1"]
    with tarfile.open(stored) as archive:
        names = [m for m in archive.getmembers() if m.name.endswith("metadata.json")]
        file = archive.extractfile(names[0])
        assert file is not None
        metadata = json.loads(file.read())
    assert len(metadata["metrics"]["walk_forward"]["folds"]) == 2
