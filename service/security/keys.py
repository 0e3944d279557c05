"""The API keys this server accepts, and the check of a presented key in constant time.

Keys come from `FILTERS_AUTH__API_KEYS` and/or a mounted secret file (one key per line, `#`
comments); the file is re-read when it changes (checked at most once a second), so a rotated
Kubernetes secret takes effect without a restart. Only SHA-256 digests of the keys are kept.
A presented key is hashed and compared with every accepted digest by `hmac.compare_digest`, so
the time taken says nothing about which key, or how much of one, matched.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from service.errors import ConfigError, Unauthenticated
from service.security.settings import AuthSettings

log = logging.getLogger(__name__)

RECHECK_S = 1.0
HINT = "send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def key_id(digest: bytes) -> str:
    """A name for a key that is safe to log and to key rate limits by (not the key)."""
    return "key-" + digest.hex()[:12]


@dataclass(frozen=True)
class _FileStamp:
    mtime_ns: int
    size: int
    inode: int


def read_key_file(path: Path) -> list[str]:
    """Keys of a secret file: one per line; blank lines and `#` comments ignored."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


class KeyRing:
    """Accepted keys from the environment and the secret file, kept current."""

    def __init__(self, settings: AuthSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = settings.enabled
        self._env = [_digest(k.get_secret_value()) for k in settings.api_keys]
        self._file = settings.api_keys_file
        self._clock = clock
        self._lock = threading.Lock()  # HTTP and gRPC may check keys from different threads
        self._from_file: list[bytes] = []
        self._stamp: _FileStamp | None = None
        self._checked_at = float("-inf")
        if self._file is not None:
            if not self._file.is_file():
                raise ConfigError(f"auth.api_keys_file {self._file} does not exist or is not a file")
            self._reload()
        if self.enabled and not self._all():
            log.warning("authentication is on but no key is configured: every call needs a key and none is accepted")

    def identify(self, presented: str | None) -> str:
        """The id of the accepted key `presented`, else raise `Unauthenticated`."""
        if not presented:
            raise Unauthenticated(f"this server needs an API key: {HINT}")
        digest = _digest(presented)
        matched: bytes | None = None
        for accepted in self._all():  # no early exit: every key is compared
            if hmac.compare_digest(digest, accepted) and matched is None:
                matched = accepted
        if matched is None:
            raise Unauthenticated(f"the API key is not accepted by this server; {HINT}")
        return key_id(matched)

    def _all(self) -> list[bytes]:
        if self._file is not None and self._clock() - self._checked_at >= RECHECK_S:
            with self._lock:
                self._reload()
        return self._env + self._from_file

    def _reload(self) -> None:
        """Re-read the key file if it changed; keep the last good keys if it cannot be read."""
        assert self._file is not None
        self._checked_at = self._clock()
        try:
            status = self._file.stat()
            stamp = _FileStamp(status.st_mtime_ns, status.st_size, status.st_ino)
            if stamp == self._stamp:
                return
            keys = read_key_file(self._file)
        except (OSError, UnicodeDecodeError) as exc:
            log.warning(
                "cannot read auth.api_keys_file (%s); keeping the %d keys read before", exc, len(self._from_file)
            )
            return
        self._from_file = [_digest(k) for k in keys]
        self._stamp = stamp
        log.info("read %d API keys from auth.api_keys_file", len(keys))


def presented_key(authorization: str | None, api_key: str | None) -> str | None:
    """The key a caller presents: `Authorization: Bearer <key>`, else `X-API-Key: <key>`."""
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    if api_key and api_key.strip():
        return api_key.strip()
    return None
