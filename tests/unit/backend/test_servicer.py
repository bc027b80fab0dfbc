"""What the backend writes beside a model, checked without a server (the BackendServicer
through a real grpc.aio server: ``tests/integration/backend/test_servicer.py``)."""

from __future__ import annotations

import json


def test_metadata_json_is_valid(tiny_bundle):
    json.dumps(tiny_bundle.metadata)
