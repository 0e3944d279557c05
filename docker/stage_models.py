"""Copy the servable models of a model repository into an image's model folder.

    python docker/stage_models.py SOURCE DEST

A model is a folder of SOURCE with a `model.toml`; what is copied is that file, the files its
`[files]` table names, and any README/LICENSE beside them. Tooling, training code and
checkpoints next to the models stay out of the image. Standard library only: it runs in the
image's build stage before or without the service installed.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

CONFIG_FILE = "model.toml"
DOC_PREFIXES = ("readme", "license", "licence", "notice", "model_card")


def model_files(folder: Path) -> list[Path]:
    """The files of one model folder that the server needs (and its documents)."""
    config = tomllib.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    named = [folder / str(rel) for rel in config.get("files", {}).values() if rel]
    docs = [p for p in folder.iterdir() if p.is_file() and p.name.lower().startswith(DOC_PREFIXES)]
    return [folder / CONFIG_FILE, *[p for p in named if p.is_file()], *docs]


def stage(source: Path, dest: Path) -> list[str]:
    """Copy every model of `source` into `dest`; returns the model folder names copied."""
    dest.mkdir(parents=True, exist_ok=True)
    staged = []
    for config in sorted(source.glob(f"*/{CONFIG_FILE}")):
        folder = config.parent
        for path in model_files(folder):
            target = dest / folder.name / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        staged.append(folder.name)
    return staged


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    staged = stage(Path(argv[0]), Path(argv[1]))
    print(f"staged {len(staged)} model(s) into {argv[1]}: {', '.join(staged) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
