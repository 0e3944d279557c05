"""Render the Kustomize overlays of `deploy/` with `kubectl kustomize` and look into the result."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.live_server import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
Doc = dict[str, Any]


def kubectl() -> str:
    """The kubectl binary, or skip the test with the reason."""
    binary = shutil.which("kubectl")
    if binary is None:
        pytest.skip("kubectl is not installed: cannot render the Kustomize overlays")
    return binary


def render(folder: Path) -> list[Doc]:
    """`kubectl kustomize folder` as a list of objects (fails the test with kustomize's message)."""
    done = subprocess.run([kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"kubectl kustomize {folder} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def render_with_components(workdir: Path, overlay: str, components: list[str]) -> list[Doc]:
    """An overlay plus optional components, through a kustomization written in `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    # kustomize takes only relative paths to other kustomizations.
    lines = ["resources:", f"  - {os.path.relpath(DEPLOY / 'overlays' / overlay, workdir)}", "components:"]
    lines += [f"  - {os.path.relpath(DEPLOY / 'components' / c, workdir)}" for c in components]
    (workdir / "kustomization.yaml").write_text("\n".join(lines) + "\n")
    return render(workdir)


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    """The single object of `kind` (and `name`), failing the test if there is not exactly one."""
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def pod_spec(docs: list[Doc]) -> Doc:
    spec: Doc = one(docs, "Deployment")["spec"]["template"]["spec"]
    return spec


def server_container(docs: list[Doc]) -> Doc:
    containers: list[Doc] = [c for c in pod_spec(docs)["containers"] if c["name"] == "server"]
    assert len(containers) == 1, "the Deployment has no container named 'server'"
    return containers[0]


def settings_configmap(docs: list[Doc]) -> dict[str, str]:
    """Data of the ConfigMap the server container takes its environment from."""
    refs = [e["configMapRef"]["name"] for e in server_container(docs).get("envFrom", []) if "configMapRef" in e]
    assert len(refs) == 1, "the server container should take its settings from one ConfigMap"
    data: dict[str, str] = one(docs, "ConfigMap", refs[0])["data"]
    return data


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether `matchLabels`-style `selector` selects an object with `labels`."""
    return all(labels.get(k) == v for k, v in selector.items())
