"""StartTraining validation: every refusal names the request field and the problem."""

from __future__ import annotations

import grpc
import pytest

from ktrdr.service.convert import overrides_to_proto
from ktrdr.training.v1 import host_pb2
from ktrdr_host.validation import RequestRefused, validate_start


def request(yaml: str, **fields: object) -> host_pb2.StartTrainingRequest:
    values: dict[str, object] = {
        "session_id": "op-1",
        "strategy_yaml": yaml,
        "results_target": "127.0.0.1:50052",
    }
    values.update(fields)
    return host_pb2.StartTrainingRequest(**values)


def refusal(req: host_pb2.StartTrainingRequest) -> RequestRefused:
    with pytest.raises(RequestRefused) as info:
        validate_start(req, "cpu")
    return info.value


def test_a_valid_request(tiny_strategy_yaml: str) -> None:
    spec = validate_start(
        request(tiny_strategy_yaml, overrides=overrides_to_proto(seed=3, device="cpu")), "auto"
    )
    assert spec.config.seed == 3
    assert spec.device.type == "cpu"
    assert spec.results_target == "127.0.0.1:50052"


@pytest.mark.parametrize(
    ("fields", "code", "text"),
    [
        ({"session_id": ""}, "INVALID_ARGUMENT", "session_id: must not be empty"),
        ({"session_id": "a b"}, "INVALID_ARGUMENT", "session_id: must not contain spaces"),
        ({"session_id": "x" * 200}, "INVALID_ARGUMENT", "session_id: at most 128"),
        ({"strategy_yaml": ""}, "INVALID_ARGUMENT", "strategy_yaml: must not be empty"),
        ({"strategy_yaml": "a: ["}, "INVALID_ARGUMENT", "strategy_yaml: YAML syntax error"),
        ({"results_target": ""}, "INVALID_ARGUMENT", "results_target: required"),
        ({"results_target": "backend"}, "INVALID_ARGUMENT", "results_target: expected 'host:port'"),
        ({"results_target": "b:99999"}, "INVALID_ARGUMENT", "results_target: expected"),
        (
            {"overrides": overrides_to_proto(timeframes=["7q"])},
            "INVALID_ARGUMENT",
            "overrides.timeframes: unknown timeframe '7q'",
        ),
        (
            {"overrides": overrides_to_proto(start_date="2024-01-01", end_date="2020-01-01")},
            "INVALID_ARGUMENT",
            "overrides.end_date: 2020-01-01 is before start_date",
        ),
        (
            {"overrides": overrides_to_proto(device="tpu")},
            "INVALID_ARGUMENT",
            "overrides.device: unknown device 'tpu'",
        ),
    ],
)
def test_refusals_name_the_field(
    tiny_strategy_yaml: str, fields: dict, code: str, text: str
) -> None:
    refused = refusal(request(tiny_strategy_yaml, **fields))
    assert refused.code.name == code
    assert text in refused.message


def test_strategy_errors_carry_the_yaml_path(tiny_strategy_yaml: str) -> None:
    refused = refusal(request(tiny_strategy_yaml.replace("epochs: 4", "epochs: -1")))
    assert refused.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "strategy_yaml.model.training.epochs: must be > 0" in refused.message


def test_missing_accelerator_is_failed_precondition(tiny_strategy_yaml: str) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    refused = refusal(request(tiny_strategy_yaml, overrides=overrides_to_proto(device="cuda")))
    assert refused.code is grpc.StatusCode.FAILED_PRECONDITION
    assert refused.message.startswith("overrides.device: device 'cuda' requested")
