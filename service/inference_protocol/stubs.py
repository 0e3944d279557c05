"""The Open Inference Protocol's gRPC messages and service (`inference.GRPCInferenceService`).

They come from the `tritonclient` package, which ships the protocol's generated modules. The
server and the clients then speak from the very same definitions, and this repository holds no
copy of the upstream `.proto` files.
"""

from __future__ import annotations

from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc

__all__ = ["model_config_pb2", "service_pb2", "service_pb2_grpc"]
