"""Read the Dockerfiles of `docker/` (with dockerfile-parse) and the build context rules of
`.dockerignore`, so tests can check them and replay a build stage without a Docker engine."""

from __future__ import annotations

import io
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser

from tests.support.live_server import REPO_ROOT

DOCKER = REPO_ROOT / "docker"
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass
class Instruction:
    keyword: str
    value: str


@dataclass
class Stage:
    """One `FROM ... AS name` stage and its instructions in order."""

    base: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def values(self, keyword: str) -> list[str]:
        return [i.value for i in self.instructions if i.keyword == keyword]


def stages(dockerfile: Path) -> list[Stage]:
    """The stages of `dockerfile`; instructions before the first FROM (global ARGs) are dropped."""
    parser = DockerfileParser(fileobj=io.BytesIO(dockerfile.read_bytes()))
    result: list[Stage] = []
    for item in parser.structure:
        keyword, value = item["instruction"], item["value"]
        if keyword == "FROM":
            base, _, name = value.partition(" AS ")
            result.append(Stage(base.strip(), name.strip()))
        elif keyword != "COMMENT" and result:
            result[-1].instructions.append(Instruction(keyword, value))
    return result


def expand(text: str, env: dict[str, str]) -> str:
    """`${VAR}` and `$VAR` replaced from `env` (unknown ones become empty, as in Docker)."""
    return _VARIABLE.sub(lambda m: env.get(m[1] or m[2], ""), text)


def assignments(value: str) -> dict[str, str]:
    """`ENV`/`ARG` `k=v k2="v 2"` as a dict, quotes removed as the Dockerfile parser does."""
    pairs = {}
    for word in shlex.split(value):
        key, _, item = word.partition("=")
        pairs[key] = item
    return pairs


def copy_sources(value: str) -> list[str]:
    """Sources of a `COPY` from the build context (none for `COPY --from=...`)."""
    words = shlex.split(value)
    if any(w.startswith("--from") for w in words):
        return []
    return [w for w in words[:-1] if not w.startswith("--")]


# ---- .dockerignore ------------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for token in re.split(r"(\*\*/?|\*|\?|\[[^\]]*\])", pattern.strip("/")):
        if token.startswith("[") and token.endswith("]") and len(token) > 2:
            parts.append(token.replace("[!", "[^"))
        elif token in ("**", "**/"):
            parts.append("(?:.*/)?" if token == "**/" else ".*")
        elif token == "*":
            parts.append("[^/]*")
        elif token == "?":
            parts.append("[^/]")
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts) + "$")


def dockerignore_rules(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) per line of a .dockerignore, in order."""
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            rules.append((negate, _pattern_regex(line.lstrip("!"))))
    return rules


def ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for negate, regex in rules:
        if any(regex.match(p) for p in prefixes):
            verdict = not negate
    return verdict


def copy_from_context(value: str, workdir: Path, root: Path, rules: list[tuple[bool, re.Pattern[str]]]) -> None:
    """Replay `COPY <value>` from the repository as build context into the image tree at `root`.

    A folder source copies its contents into the destination; a file source lands in the
    destination folder (trailing `/`) or at the destination path. Ignored paths are skipped.
    """
    words = [w for w in shlex.split(value) if not w.startswith("--")]
    *sources, dest = words
    target = (root / dest.lstrip("/")) if dest.startswith("/") else workdir / dest
    for source in sources:
        origin = REPO_ROOT / source
        if origin.is_file():
            place = target / origin.name if dest.endswith("/") or len(sources) > 1 else target
            _copy_file(origin, place, rules)
            continue
        for path in sorted(p for p in origin.rglob("*") if p.is_file()):
            _copy_file(path, target / path.relative_to(origin), rules)


def _copy_file(path: Path, target: Path, rules: list[tuple[bool, re.Pattern[str]]]) -> None:
    if not ignored(path.relative_to(REPO_ROOT).as_posix(), rules):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
