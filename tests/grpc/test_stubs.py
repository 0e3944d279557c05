"""The committed gRPC stubs are what `proto/` generates; the inference protocol is tritonclient's."""

from __future__ import annotations

import pytest

from service.grpc import codegen

pytest.importorskip("grpc_tools")


def test_committed_stubs_match_a_fresh_generation() -> None:
    """Regenerate with `python -m service.grpc.codegen` after changing proto/, and commit the result."""
    assert codegen.stale_files() == []


def test_the_inference_service_offers_every_protocol_method() -> None:
    from service.inference_protocol.stubs import service_pb2

    service = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert service.full_name == "inference.GRPCInferenceService"
    required = {
        "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer",
        "ModelStreamInfer", "ModelConfig", "RepositoryIndex",
    }  # fmt: skip
    assert required <= {m.name for m in service.methods}
