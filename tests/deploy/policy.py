"""Small checks shared by the image and manifest tests."""

from __future__ import annotations

import re
from typing import Any

from service.settings import Settings

# Environment keys that the images or manifests set ahead of the setting landing in
# service/settings.py (the server ignores unknown FILTERS_* keys until then).
PENDING_SETTINGS: dict[str, str] = {}
_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "m": 1e-3}


def quantity(value: object) -> float:
    """A Kubernetes resource quantity ("500m", "2Gi", 1) as a number."""
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match, f"not a quantity: {value!r}"
    return float(match[1]) * _UNITS.get(match[2], 1)


def setting_exists(key: str) -> bool:
    """Whether environment variable `key` (FILTERS_A__B) is read by a field of `Settings`."""
    parts = key.removeprefix("FILTERS_").lower().split("__")
    fields: dict[str, Any] = Settings.model_fields
    for part in parts[:-1]:
        annotation = fields[part].annotation if part in fields else None
        if annotation is None or not hasattr(annotation, "model_fields"):
            return False
        fields = annotation.model_fields
    return parts[-1] in fields


def unknown_settings(keys: set[str]) -> set[str]:
    """The FILTERS_* keys of `keys` that no setting reads and that are not pending."""
    return {k for k in keys if k.startswith("FILTERS_") and not setting_exists(k) and k not in PENDING_SETTINGS}
