"""The contract's services and streaming shapes, as the host and backend rely on them."""

from __future__ import annotations

from google.protobuf.descriptor import EnumDescriptor, FileDescriptor

from ktrdr.training.v1 import backend_pb2, common_pb2, host_pb2, hosts_pb2

FILES: list[FileDescriptor] = [
    common_pb2.DESCRIPTOR,
    host_pb2.DESCRIPTOR,
    hosts_pb2.DESCRIPTOR,
    backend_pb2.DESCRIPTOR,
]

# (client streaming, server streaming) per RPC.
EXPECTED = {
    "TrainingHost": {
        "StartTraining": (False, True),
        "WatchSession": (False, True),
        "CancelTraining": (False, False),
        "GetSession": (False, False),
        "ListSessions": (False, False),
        "GetCapabilities": (False, False),
    },
    "Backend": {
        "CreateTraining": (False, False),
        "WatchOperation": (False, True),
        "GetOperation": (False, False),
        "ListOperations": (False, False),
        "CancelOperation": (False, False),
        "GetTrainingConfig": (False, False),
        "UpdateTrainingConfig": (False, False),
        "SubmitResults": (True, False),
        "ListModels": (False, False),
        "ListStrategies": (False, False),
        "GetModel": (False, False),
        "DownloadModel": (False, True),
        "DeleteModel": (False, False),
        "SetModelAlias": (False, False),
        "DeleteModelAlias": (False, False),
        "SetModelTags": (False, False),
        "CreateSweep": (False, False),
        "WatchSweep": (False, True),
        "GetSweep": (False, False),
        "ListSweeps": (False, False),
        "CancelSweep": (False, False),
        "RegisterHost": (False, False),
        "HostHeartbeat": (False, False),
        "ListHosts": (False, False),
    },
}


def test_services_and_streaming_shapes() -> None:
    services = {s.full_name: s for f in FILES for s in f.services_by_name.values()}
    assert set(services) == {f"ktrdr.training.v1.{name}" for name in EXPECTED}
    for name, rpcs in EXPECTED.items():
        service = services[f"ktrdr.training.v1.{name}"]
        shapes = {m.name: (m.client_streaming, m.server_streaming) for m in service.methods}
        assert shapes == rpcs
        for method in service.methods:
            assert method.input_type.name == f"{method.name}Request"
            assert method.output_type.name == f"{method.name}Response"


def test_every_enum_starts_unspecified() -> None:
    enums: list[EnumDescriptor] = [e for f in FILES for e in f.enum_types_by_name.values()]
    assert enums
    for enum in enums:
        assert enum.values[0].number == 0
        assert enum.values[0].name.endswith("_UNSPECIFIED")


def test_progress_kinds_mirror_the_library() -> None:
    from ktrdr.training.progress import ProgressKind

    wire = {
        v.name.removeprefix("PROGRESS_KIND_").lower()
        for v in common_pb2.ProgressKind.DESCRIPTOR.values
        if v.number
    }
    assert wire == {k.value for k in ProgressKind}


def test_seed_has_presence() -> None:
    overrides = common_pb2.TrainingOverrides()
    assert not overrides.HasField("seed")
    overrides.seed = 0
    assert overrides.HasField("seed")
