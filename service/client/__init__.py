"""Python clients of the filters service: `FiltersClient` (gRPC) and `HttpClient` (HTTP).

`python -m service.client --help` lists command-line examples of both, including a video stream.
"""

from service.client.grpc_client import FiltersClient, Result
from service.client.http_client import HttpClient, HttpError

__all__ = ["FiltersClient", "HttpClient", "HttpError", "Result"]
