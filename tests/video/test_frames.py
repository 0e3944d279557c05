"""Frame batches: `POST /v1/superres/frames` with several `frame` parts, results in order."""

from __future__ import annotations

import email
import email.policy

import httpx
import numpy as np

from tests.support.data import decode_rgb, png_bytes
from tests.support.live_server import LiveServer
from tests.video.clips import noise_frames


def frame_parts(images: list[bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("frame", (f"f{i}.png", data, "image/png")) for i, data in enumerate(images)]


def split_mixed(answer: httpx.Response) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/mixed answer, parsed by the standard library's MIME parser."""
    head = f"Content-Type: {answer.headers['content-type']}\r\n\r\n".encode()
    message = email.message_from_bytes(head + answer.content, policy=email.policy.HTTP)
    parts = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        parts.append(({k.lower(): str(v) for k, v in part.items()}, payload))
    return parts


def test_frames_come_back_in_order_each_as_the_image_endpoint_answers(video_server: LiveServer) -> None:
    sizes = [(48, 64), (30, 40), (64, 64), (17, 23), (48, 64)]  # mixed sizes batch together by shape
    images = [png_bytes(noise_frames(1, w, h, seed=i)[0]) for i, (h, w) in enumerate(sizes)]
    answer = httpx.post(f"{video_server.url}/v1/superres/frames", files=frame_parts(images), timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("multipart/mixed")
    parts = split_mixed(answer)
    assert [h["x-frame-index"] for h, _ in parts] == [str(i) for i in range(len(images))]
    for (headers, data), image in zip(parts, images):
        assert headers["content-type"] == "image/png"
        single = httpx.post(f"{video_server.url}/v1/superres", content=image, headers={"Content-Type": "image/png"})
        assert data == single.content
        source = decode_rgb(image)
        assert decode_rgb(data).shape == (2 * source.shape[0], 2 * source.shape[1], 3)


def test_a_bad_frame_fails_the_batch_naming_its_index(video_server: LiveServer) -> None:
    good = png_bytes(np.zeros((16, 16, 3), np.uint8))
    answer = httpx.post(
        f"{video_server.url}/v1/superres/frames", files=frame_parts([good, good, b"not an image", good])
    )
    assert answer.status_code == 415
    assert answer.json()["error"]["message"].startswith("frame 2:")


def test_a_batch_without_frames_is_400(video_server: LiveServer) -> None:
    answer = httpx.post(f"{video_server.url}/v1/superres/frames", files={"image": ("x.png", b"123", "image/png")})
    assert answer.status_code == 400 and "'frame'" in answer.json()["error"]["message"]
    raw = httpx.post(f"{video_server.url}/v1/superres/frames", content=b"123", headers={"Content-Type": "image/png"})
    assert raw.status_code == 400 and "multipart" in raw.json()["error"]["message"]


def test_too_many_frames_is_413(strict_server: LiveServer) -> None:
    good = png_bytes(np.zeros((8, 8, 3), np.uint8))
    answer = httpx.post(f"{strict_server.url}/v1/superres/frames", files=frame_parts([good] * 4))
    assert answer.status_code == 413 and "FILTERS_VIDEO__MAX_BATCH_FRAMES" in answer.json()["error"]["message"]
