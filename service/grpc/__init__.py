"""The gRPC front: our `filters.v1` API, the Open Inference Protocol servicer, health and reflection,
served by one `grpc.aio` server beside the HTTP server, over the same serving core."""
