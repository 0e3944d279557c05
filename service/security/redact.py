"""No file paths in what clients read: error messages name a file by its base name only.

Runtime libraries put absolute paths in their errors ("Load model from /srv/engines/x/model.onnx
failed"); the full text stays in the server log, the answer says "model.onnx".
"""

from __future__ import annotations

import re

# An absolute path of two or more segments, not inside a URL or a longer token, and not an API
# route (/v1/..., /v2/...).
_PATH = re.compile(r"(?<![\w:/.~-])/(?!v\d+/)(?:[^\s/'\"`:;,()\[\]{}<>]+/)+([^\s/'\"`:;,()\[\]{}<>]*)")


def redact_paths(text: str) -> str:
    """`text` with every absolute file path replaced by its last segment."""
    return _PATH.sub(lambda m: m.group(1) or "<path>", text)
