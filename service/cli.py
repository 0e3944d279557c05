"""`python -m service`: start the server with settings from the environment."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from service.errors import ConfigError
from service.http.app import create_app
from service.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service", description="Serve the model repository over HTTP.")
    parser.add_argument("--host", help="bind address (FILTERS_HOST)")
    parser.add_argument("--port", type=int, help="HTTP port (FILTERS_PORT)")
    parser.add_argument("--model-repository", help="model repository folder (FILTERS_MODEL_REPOSITORY)")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    settings = Settings(**overrides)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(settings)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, timeout_graceful_shutdown=30)
    return 0
