"""The Kubernetes manifests: each overlay renders, validates against the Kubernetes schema, and
passes the policy checks a reviewer would make (probes, limits, non-root, GPUs, drain timing)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, validate

from tests.deploy.kustomize import (
    DEPLOY,
    Doc,
    matches,
    one,
    pod_spec,
    render,
    render_with_components,
    server_container,
    settings_configmap,
)
from tests.deploy.policy import quantity, unknown_settings
from tests.support.data import png_bytes
from tests.support.live_server import REPO_ROOT, LiveServer

OVERLAYS = ["gpu", "cpu"]
# The oldest Kubernetes the manifests support (gRPC probes are GA since 1.27) and the newest schema bundled.
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
CRD_KINDS = {"ServiceMonitor"}
# After SIGTERM the server waits up to FILTERS_DRAIN_TIMEOUT_S for HTTP requests (service/lifecycle.py),
# then uvicorn's graceful shutdown up to the same again, then gRPC's stop grace up to the same again.
DRAIN_TIMEOUTS_IN_A_ROW = 3


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Doc]]:
    return request.param, render(DEPLOY / "overlays" / request.param)


def all_containers(docs: list[Doc]) -> list[Doc]:
    spec = pod_spec(docs)
    containers: list[Doc] = spec.get("initContainers", []) + spec["containers"]
    return containers


def test_overlay_renders_every_object(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "Service",
            "Service",
            "ServiceMonitor",
        ]
    )


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_objects_validate_against_the_kubernetes_schema(overlay: tuple[str, list[Doc]], version: str) -> None:
    name, docs = overlay
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            continue  # no schema bundled: test_servicemonitor_scrapes_the_metrics_port checks it
        try:
            validate(doc, version, strict=True)
        except ValidationError as exc:
            pytest.fail(
                f"{name}: {doc['kind']}/{doc['metadata']['name']} is invalid for {version}: {exc.message} at {list(exc.path)}"
            )


def test_schema_validation_is_strict() -> None:
    """Control: the validator rejects a misspelt field, so the test above can fail."""
    deployment = one(render(DEPLOY / "overlays" / "cpu"), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(ValidationError, match="readinesProbe"):
        validate(deployment, KUBERNETES_VERSIONS[0], strict=True)
    with pytest.raises(SchemaNotFoundError):
        validate({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor"}, KUBERNETES_VERSIONS[0])


def test_every_container_has_cpu_and_memory_requests_and_limits(overlay: tuple[str, list[Doc]]) -> None:
    name, docs = overlay
    for container in all_containers(docs):
        resources = container.get("resources", {})
        for resource in ("cpu", "memory"):
            request = resources.get("requests", {}).get(resource)
            limit = resources.get("limits", {}).get(resource)
            assert request is not None and limit is not None, f"{name}/{container['name']}: no {resource} request/limit"
            assert quantity(limit) >= quantity(request), f"{name}/{container['name']}: {resource} limit < request"


def test_gpu_overlay_requests_one_gpu_and_cpu_overlay_none(overlay: tuple[str, list[Doc]]) -> None:
    name, docs = overlay
    for container in all_containers(docs):
        limits, requests = container["resources"]["limits"], container["resources"]["requests"]
        if name == "gpu":
            assert quantity(limits.get("nvidia.com/gpu", 0)) == 1, f"{container['name']} lacks an nvidia.com/gpu limit"
            assert requests.get("nvidia.com/gpu") == limits["nvidia.com/gpu"], "GPU request must equal the limit"
        else:
            assert "nvidia.com/gpu" not in limits and "nvidia.com/gpu" not in requests
    tolerations = {t["key"] for t in pod_spec(docs).get("tolerations", [])}
    assert ("nvidia.com/gpu" in tolerations) == (name == "gpu")


def test_pods_run_as_non_root_on_a_read_only_root_filesystem(overlay: tuple[str, list[Doc]]) -> None:
    name, docs = overlay
    pod = pod_spec(docs)["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0 and pod["seccompProfile"]["type"] == "RuntimeDefault"
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    for container in all_containers(docs):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, f"{name}/{container['name']}: writable root filesystem"
        assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert {"/tmp", "/var/cache/filters"} <= set(mounts), f"{name}/{container['name']}: writable paths missing"
        if container["name"] == "server":
            spool = settings_configmap(docs)["FILTERS_VIDEO__SPOOL_DIR"]
            assert spool in mounts, "video uploads would land on the read-only root filesystem"
        for volume in mounts.values():
            assert {"emptyDir", "persistentVolumeClaim"} & set(volumes[volume]), (
                f"volume {volume} is not writable storage"
            )


def test_probes_watch_readiness_liveness_and_the_grpc_port(overlay: tuple[str, list[Doc]]) -> None:
    name, docs = overlay
    container = server_container(docs)
    settings = settings_configmap(docs)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": int(settings["FILTERS_PORT"]), "grpc": int(settings["FILTERS_GRPC_PORT"])}
    readiness, liveness, startup = (container[k] for k in ("readinessProbe", "livenessProbe", "startupProbe"))
    assert readiness["httpGet"] == {"path": "/readyz", "port": "http"}
    assert liveness["httpGet"] == {"path": "/healthz", "port": "http"}
    assert startup["grpc"]["port"] == ports["grpc"], "the startup probe should ask the gRPC health service"
    budget_s = startup["periodSeconds"] * startup["failureThreshold"]
    assert budget_s >= (600 if name == "gpu" else 120), (
        f"{name}: {budget_s} s is too short for engine builds and warm-up"
    )
    assert liveness["failureThreshold"] * liveness["periodSeconds"] >= 20, "liveness would kill a briefly busy pod"


def test_grace_period_covers_prestop_and_the_drain_timeout(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    pre_stop = server_container(docs)["lifecycle"]["preStop"]
    command = pre_stop["exec"]["command"] if "exec" in pre_stop else ["sleep", str(pre_stop["sleep"]["seconds"])]
    assert command[0] == "sleep", "preStop should wait for endpoints to drop the pod, then let SIGTERM drain"
    drain_s = float(settings_configmap(docs)["FILTERS_DRAIN_TIMEOUT_S"])
    grace_s = pod_spec(docs)["terminationGracePeriodSeconds"]
    worst_s = float(command[1]) + DRAIN_TIMEOUTS_IN_A_ROW * drain_s
    assert grace_s > worst_s, (
        f"grace {grace_s} s <= preStop {command[1]} s + {DRAIN_TIMEOUTS_IN_A_ROW} x drain {drain_s} s"
    )


def test_settings_keys_are_real_settings(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    unknown = unknown_settings(set(settings_configmap(docs)))
    assert not unknown, f"ConfigMap keys that no setting reads (typo?): {sorted(unknown)}"
    assert int(settings_configmap(docs)["FILTERS_CODEC_THREADS"]) <= quantity(
        server_container(docs)["resources"]["limits"]["cpu"]
    ), "more codec threads than CPUs in the limit"


def test_services_expose_http_and_grpc_with_app_protocols(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    container_ports = {p["name"] for p in server_container(docs)["ports"]}
    service = one(docs, "Service", "filters")
    assert {p["name"]: p["appProtocol"] for p in service["spec"]["ports"]} == {
        "http": "http",
        "grpc": "kubernetes.io/h2c",
    }
    headless = one(docs, "Service", "filters-grpc")
    assert headless["spec"]["clusterIP"] == "None", "client-side gRPC balancing needs a headless Service"
    for svc in (service, headless):
        assert matches(svc["spec"]["selector"], labels)
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= container_ports


def test_servicemonitor_scrapes_the_metrics_port(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    monitor = one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    selected = [
        s
        for s in docs
        if s["kind"] == "Service" and matches(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    assert [s["metadata"]["name"] for s in selected] == ["filters"], "scrape one Service, or every series is doubled"
    port_names = {p["name"] for p in selected[0]["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names and endpoint["path"] == "/metrics"


def test_autoscaler_budget_and_spread_target_the_deployment(overlay: tuple[str, list[Doc]]) -> None:
    _, docs = overlay
    deployment = one(docs, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    hpa = one(docs, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    assert "replicas" not in deployment["spec"], "the HPA owns the count; a re-apply would reset it"
    kinds = {m["type"]: m for m in hpa["metrics"]}
    assert kinds["Resource"]["resource"]["name"] == "cpu", "CPU is the fallback metric"
    assert kinds["Pods"]["pods"]["metric"]["name"] in _adapter_metric_names()
    pdb = one(docs, "PodDisruptionBudget")["spec"]
    assert matches(pdb["selector"]["matchLabels"], labels) and pdb.get("maxUnavailable", 0) >= 1
    strategy = deployment["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0, "a rolling update must not lower capacity"
    spread = pod_spec(docs)["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    assert all(matches(c["labelSelector"]["matchLabels"], labels) for c in spread)


def _adapter_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = yaml.safe_load((DEPLOY / "monitoring" / "prometheus-adapter-rules.yaml").read_text())[
        "rules"
    ]["custom"]
    return rules


def _adapter_metric_names() -> set[str]:
    return {rule["name"]["as"] for rule in _adapter_rules()}


def test_adapter_rules_read_series_the_server_exports(server: LiveServer) -> None:
    """The HPA's metric is computed from series the real server serves on /metrics."""
    pixels = np.zeros((16, 16, 3), np.uint8)
    assert httpx.post(f"{server.url}/v1/superres", content=png_bytes(pixels), timeout=60).status_code == 200
    exported = httpx.get(f"{server.url}/metrics", timeout=10).text
    for rule in _adapter_rules():
        for series in re.findall(r"\b(filters_[a-z_]+)\{", rule["seriesQuery"] + " " + rule["metricsQuery"]):
            assert re.search(rf"^{series}\{{", exported, re.M), f"the adapter reads {series}, which /metrics lacks"


def test_ingress_component_renders_and_validates(tmp_path: Path) -> None:
    docs = render_with_components(tmp_path / "with-ingress", "cpu", ["ingress-nginx"])
    ingresses = [d for d in docs if d["kind"] == "Ingress"]
    assert {i["metadata"]["annotations"].get("nginx.ingress.kubernetes.io/backend-protocol") for i in ingresses} == {
        None,
        "GRPC",
    }
    for ingress in ingresses:
        validate(ingress, KUBERNETES_VERSIONS[0], strict=True)
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["name"] == one(docs, "Service", "filters")["metadata"]["name"]


def test_engine_build_init_container_runs_a_real_command() -> None:
    """The init container's command is the TensorRT builder's CLI with options it has."""
    docs = render(DEPLOY / "overlays" / "gpu")
    (init,) = pod_spec(docs)["initContainers"]
    python, flag, module, subcommand, *options = init["command"]
    assert (python, flag) == ("/opt/venv/bin/python", "-m"), shlex.join(init["command"])
    probe = subprocess.run(
        [sys.executable, "-m", module, subcommand, "--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert probe.returncode == 0, f"python -m {module} {subcommand} --help failed:\n{probe.stderr}"
    for option in options[::2]:
        assert option in probe.stdout, f"the builder has no {option} option"
    cache = options[options.index("--cache") + 1]
    assert cache == settings_configmap(docs)["FILTERS_ENGINE_CACHE_DIR"], "the server would look elsewhere"
    mounts = {m["mountPath"] for m in init["volumeMounts"]}
    assert any(cache.startswith(m + "/") for m in mounts), "the engines would be lost with the init container"
