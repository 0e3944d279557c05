"""atheris (libFuzzer) target: image probe + decode must decode or raise a 4xx ServiceError.

Run by bench/fuzz_campaign.py --atheris-runs N; by hand:
    python bench/fuzz_atheris_target.py -runs=100000 -max_len=65536 corpus_folder/
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

with atheris.instrument_imports():
    from service.errors import ServiceError
    from service.media.images import decode, probe

MAX_PIXELS = 512 * 512


def test_one_input(data: bytes) -> None:
    try:
        header = probe(data, MAX_PIXELS)
        image = decode(data, header)
    except ServiceError as error:
        if not 400 <= error.http_status < 500:
            raise
        return
    if image.width * image.height > MAX_PIXELS:
        raise AssertionError(f"decoded {image.width}x{image.height}, over the limit")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
