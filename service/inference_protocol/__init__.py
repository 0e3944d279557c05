"""The Open Inference Protocol (KServe v2, with Triton's extensions) over HTTP (`/v2`) and gRPC
(`inference.GRPCInferenceService`): model adapters per task, one protocol core, two thin fronts."""
