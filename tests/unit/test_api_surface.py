"""The public surface does not drift unnoticed: the OpenAPI schema snapshot, the settings table."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel

from service.http.app import create_app
from service.settings import Limits, Settings
from tests.support.live_server import REPO_ROOT

SNAPSHOT = REPO_ROOT / "tests" / "snapshots" / "openapi.json"


def test_openapi_schema_matches_the_snapshot(tiny_repository: Path) -> None:
    """Regenerate with UPDATE_SNAPSHOTS=1 after an intended API change, and review the diff."""
    schema = create_app(Settings(model_repository=tiny_repository)).openapi()
    rendered = json.dumps(schema, indent=1, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(rendered)
    assert SNAPSHOT.read_text() == rendered, "the API changed: run with UPDATE_SNAPSHOTS=1 and review"


def test_readme_documents_every_setting() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    names = [f"FILTERS_{n.upper()}" for n in Settings.model_fields if n != "limits"]
    names += [f"FILTERS_LIMITS__{n.upper()}" for n in Limits.model_fields]
    for group, field in Settings.model_fields.items():  # nested groups (auth, tls, ...): their fields
        nested = field.annotation
        if group != "limits" and isinstance(nested, type) and issubclass(nested, BaseModel):
            names.remove(f"FILTERS_{group.upper()}")
            names += [f"FILTERS_{group.upper()}__{n.upper()}" for n in nested.model_fields]
    missing = [n for n in names if f"`{n}`" not in readme]
    assert not missing, f"README settings table lacks {missing}"
