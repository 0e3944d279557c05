"""RGB -> Y'CbCr coefficients for the encoder's 4:2:0 frames, by colour matrix and range.

The video path converts the model's RGB output to 8-bit 4:2:0 before the encoder. On the host
swscale does it (`video_encode.rgb_to_frame`); on the GPU `device_yuv.i420_on_host` applies the
matrix returned here, so both give the same Y (to rounding) for the same colour tags.
"""

from __future__ import annotations

import numpy as np

# Kr, Kb of each matrix (FFmpeg's AVColorSpace codes); the rest are tagged BT.601 on output
LUMA_WEIGHTS: dict[int, tuple[float, float]] = {
    1: (0.2126, 0.0722),  # BT.709
    4: (0.30, 0.11),  # FCC
    5: (0.299, 0.114),  # BT.470BG (BT.601)
    6: (0.299, 0.114),  # SMPTE 170M (BT.601)
    7: (0.212, 0.087),  # SMPTE 240M
    9: (0.2627, 0.0593),  # BT.2020 non-constant luminance
    10: (0.2627, 0.0593),  # BT.2020 constant luminance (approximated by the NCL matrix)
}


def rgb_to_yuv(space: int, full_range: bool) -> tuple[np.ndarray, np.ndarray]:
    """(matrix 3x3, offset 3): [Y, Cb, Cr] = matrix @ [R, G, B] + offset, for 0..255 RGB.

    Limited ("MPEG") range puts Y in 16..235 and Cb/Cr in 16..240; full ("JPEG") range uses 0..255."""
    kr, kb = LUMA_WEIGHTS[space]
    kg = 1.0 - kr - kb
    matrix = np.array(
        [
            [kr, kg, kb],
            [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
            [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
        ]
    )
    if full_range:
        return matrix, np.array([0.0, 128.0, 128.0])
    scale = np.array([[219.0 / 255.0], [224.0 / 255.0], [224.0 / 255.0]])
    return matrix * scale, np.array([16.0, 128.0, 128.0])
