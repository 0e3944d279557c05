"""`python -m service`: start the server with settings from the environment."""

from __future__ import annotations

import argparse
import logging.config
import sys
from typing import Any

import uvicorn

from service.core import ServingCore
from service.errors import ConfigError
from service.http.app import create_app
from service.lifecycle import DrainingServer, InFlightCounter
from service.processes import WORKER_FLAG, reuse_port_socket, supervise
from service.security.request_id import logging_config
from service.security.tls import uvicorn_ssl_options
from service.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service", description="Serve the model repository over HTTP and gRPC."
    )
    parser.add_argument("--host", help="bind address (FILTERS_HOST)")
    parser.add_argument("--port", type=int, help="HTTP port (FILTERS_PORT)")
    parser.add_argument("--grpc-port", type=int, help="gRPC port (FILTERS_GRPC_PORT)")
    parser.add_argument("--model-repository", help="model repository folder (FILTERS_MODEL_REPOSITORY)")
    parser.add_argument(WORKER_FLAG, action="store_true", help=argparse.SUPPRESS)  # a supervisor's child
    args = parser.parse_args(argv)
    child = args.worker_process
    overrides = {k: v for k, v in vars(args).items() if v is not None and k != "worker_process"}
    settings = Settings(**overrides)
    logging.config.dictConfig(logging_config(settings.log_level))
    if settings.workers > 1 and not child:
        if settings.port == 0 or settings.grpc_port == 0:
            print("error: FILTERS_WORKERS > 1 needs fixed ports (FILTERS_PORT, FILTERS_GRPC_PORT)", file=sys.stderr)
            return 2
        return supervise(sys.argv[1:] if argv is None else argv, settings.workers)
    try:
        app = create_app(settings)
        ssl_options: dict[str, Any] = uvicorn_ssl_options(settings.tls)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counter = InFlightCounter(app)
    config = uvicorn.Config(
        counter,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=max(1, int(settings.drain_timeout_s)),
        log_config=logging_config(settings.log_level),
        **ssl_options,
    )
    core: ServingCore = app.state.core
    server = DrainingServer(config, core.state, counter, settings.drain_timeout_s, settings.drain_announce_s)
    server.run(sockets=[reuse_port_socket(settings.host, settings.port)] if settings.workers > 1 else None)
    return 0
