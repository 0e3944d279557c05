"""The model repository: bundled models (one folder with a `model.toml` each) and their tooling.

Subpackages: `archs` (PyTorch networks), `tooling` (export, import, resize, metrics, evaluation)
and `training` (the script that trains the bundled super-resolution models). Run
`python -m engines --help` for the command line.
"""
