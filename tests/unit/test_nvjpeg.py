"""nvJPEG called directly (`service/media/nvjpeg.py`): valid JPEGs of the right chroma layout and
quality, the same bytes from many threads at once as from one, and a clear reason where the
library is missing. The encoding tests need a CUDA GPU (they run on the device machine)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from service.media import nvjpeg
from tests.support.data import psnr

torch = pytest.importorskip("torch")
gpu = pytest.mark.gpu


def cuda_or_skip() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    problem = nvjpeg.load()
    if problem is not None:
        pytest.fail(f"a CUDA machine without a usable libnvjpeg: {problem}")


def picture(height: int = 540, width: int = 960, seed: int = 0) -> np.ndarray:
    """A photo-like test image (gradients, texture, hard edges, sensor noise), made here so the
    test needs no data beside the checkout on the GPU machine."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rgb = np.stack([x * 255 / width, y * 255 / height, 128 + 90 * np.sin(x / 13) * np.cos(y / 17)], axis=-1)
    for _ in range(12):
        top, left = rng.integers(0, height - 40), rng.integers(0, width - 40)
        rgb[top : top + rng.integers(10, 40), left : left + rng.integers(10, 40)] = rng.integers(0, 256, 3)
    rgb += rng.normal(0, 3, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def sampling_factors(jpeg: bytes) -> list[int]:
    """The (horizontal << 4 | vertical) sampling factor of each component, from the baseline SOF."""
    start = jpeg.index(b"\xff\xc0")
    count = jpeg[start + 9]
    return [jpeg[start + 11 + 3 * i] for i in range(count)]


def test_without_the_library_load_says_why_instead_of_raising() -> None:
    problem = nvjpeg.load()
    assert problem is None or "libnvjpeg" in problem or "nvjpeg" in problem.lower()
    assert (nvjpeg.library_path() is None) == (problem is not None)


@gpu
@pytest.mark.parametrize(("subsampling", "factors"), [("420", [0x22, 0x11, 0x11]), ("444", [0x11, 0x11, 0x11])])
def test_a_photo_encodes_to_a_jpeg_of_that_chroma_layout_and_quality(subsampling: str, factors: list[int]) -> None:
    cuda_or_skip()
    rgb = picture()
    jpeg = nvjpeg.encode(torch.from_numpy(rgb).cuda(), 90, subsampling)  # type: ignore[arg-type]
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert sampling_factors(jpeg) == factors
    assert decoded.shape == rgb.shape
    assert psnr(decoded, rgb) > 33.0
    host = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
    if subsampling == "420":  # about libjpeg's size at the same quality and layout
        assert 0.5 < len(jpeg) / len(host) < 2.0


@gpu
def test_threads_at_once_give_the_bytes_one_thread_gives() -> None:
    """torchvision's shared encoder state returned corrupt data under concurrency (vision#9060);
    here every thread has its own state and stream."""
    cuda_or_skip()
    images = [torch.from_numpy(picture(seed=i)).cuda() for i in range(8)]
    alone = [nvjpeg.encode(image, 85) for image in images]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            assert list(pool.map(lambda image: nvjpeg.encode(image, 85), images)) == alone


@gpu
def test_a_non_contiguous_view_and_an_odd_size_encode() -> None:
    cuda_or_skip()
    rgb = picture()[:301, :203]
    tensor = torch.from_numpy(rgb.transpose(1, 0, 2).copy()).cuda().permute(1, 0, 2)  # a strided view
    assert not tensor.is_contiguous()
    jpeg = nvjpeg.encode(tensor, 95)
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert decoded.shape == rgb.shape and psnr(decoded, rgb) > 33.0
