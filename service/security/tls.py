"""TLS for both front ends, from `FILTERS_TLS__CERT_FILE` and `FILTERS_TLS__KEY_FILE`.

With both set, HTTP (uvicorn) and gRPC serve TLS only; the files are checked at start-up, so a
missing or unreadable file stops the server with a message instead of failing the first handshake.
"""

from __future__ import annotations

import ssl
from typing import Any

from service.errors import ConfigError
from service.security.settings import TlsSettings


def _pem_pair(tls: TlsSettings) -> tuple[bytes, bytes]:
    """The certificate chain and key, read and checked to form a pair."""
    assert tls.cert_file is not None and tls.key_file is not None
    try:
        cert, key = tls.cert_file.read_bytes(), tls.key_file.read_bytes()
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(tls.cert_file, tls.key_file)
    except ssl.SSLError as exc:  # before OSError: it is one
        raise ConfigError(
            f"tls: {tls.cert_file} and {tls.key_file} are not a PEM certificate and its key: {exc}"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"tls: cannot read the certificate or key: {exc}") from exc
    return cert, key


def uvicorn_ssl_options(tls: TlsSettings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.Config`: the certificate and key, or nothing for plain HTTP."""
    if not tls.enabled:
        return {}
    _pem_pair(tls)
    return {"ssl_certfile": str(tls.cert_file), "ssl_keyfile": str(tls.key_file)}


def grpc_server_credentials(tls: TlsSettings) -> Any:
    """`grpc.ssl_server_credentials` for the gRPC server's `add_secure_port`, or None for plain text."""
    if not tls.enabled:
        return None
    import grpc  # only the gRPC front end needs it

    cert, key = _pem_pair(tls)
    return grpc.ssl_server_credentials([(key, cert)])
