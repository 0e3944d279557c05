"""Who may call the service and how calls are traced: API keys / bearer tokens (HTTP middleware,
gRPC interceptor), per-client rate limits, request IDs in responses and logs, TLS, and the
redaction of file paths from anything a client reads."""
