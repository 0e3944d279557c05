"""The tests' HTTP client for video: stream an upload, read the streamed answer, time its first byte."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.live_server import LiveServer


@dataclass
class Streamed:
    """A streamed answer, read to its end (or to the error that ended it)."""

    status: int
    headers: httpx.Headers
    data: bytes
    first_byte_s: float | None
    total_s: float
    error: Exception | None = None

    def json(self) -> dict[str, object]:
        value = json.loads(self.data)
        assert isinstance(value, dict)
        return value


def post_video(
    server: LiveServer,
    clip: Path | bytes,
    *,
    params: str = "preset=ultrafast",
    content_type: str = "video/mp4",
    multipart: bool = False,
    headers: dict[str, str] | None = None,
    path: str = "/v1/superres",
) -> Streamed:
    """POST a video (raw body or multipart field 'video') and read the whole answer as it streams."""
    body = clip.read_bytes() if isinstance(clip, Path) else clip
    kwargs: dict[str, object] = {"headers": {**(headers or {})}}
    if multipart:
        kwargs["files"] = {"video": ("clip", body, content_type)}
    else:
        kwargs["content"] = body
        kwargs["headers"] = {"Content-Type": content_type, **(headers or {})}
    started = time.perf_counter()
    first: float | None = None
    chunks: list[bytes] = []
    url = f"{server.url}{path}?{params}"
    with httpx.Client(timeout=300) as client, client.stream("POST", url, **kwargs) as response:  # type: ignore[arg-type]
        error: Exception | None = None
        try:
            for chunk in response.iter_raw():
                if first is None:
                    first = time.perf_counter() - started
                chunks.append(chunk)
        except httpx.HTTPError as exc:  # the server aborted the stream
            error = exc
        total = time.perf_counter() - started
        return Streamed(response.status_code, response.headers, b"".join(chunks), first, total, error)


def error_of(result: Streamed) -> tuple[str, str]:
    """(code, message) of a JSON error answer."""
    body = result.json()
    error = body["error"]
    assert isinstance(error, dict)
    return str(error["code"]), str(error["message"])


def frames_in_flight(server: LiveServer, client: httpx.Client | None = None) -> float | None:
    """The server's `filters_video_frames_in_flight` gauge (None before the video module is loaded)."""
    text = (client or httpx).get(f"{server.url}/metrics").text
    match = re.search(r"^filters_video_frames_in_flight (\S+)$", text, re.MULTILINE)
    return float(match[1]) if match else None


@dataclass
class ServerSampler:
    """Samples a server's RSS and its frames-in-flight gauge on a thread while a request runs."""

    server: LiveServer
    interval_s: float = 0.05
    rss_bytes: list[int] = field(default_factory=list)
    frames_in_flight: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def rss(self) -> int:
        status = Path(f"/proc/{self.server.process.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert match is not None
        return int(match[1]) * 1024

    def __enter__(self) -> ServerSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                self.rss_bytes.append(self.rss())
                value = frames_in_flight(self.server, client)
                if value is not None:
                    self.frames_in_flight.append(value)
                self._stop.wait(self.interval_s)
