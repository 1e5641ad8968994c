"""Module boundaries, checked mechanically with import-linter's contracts in ``.importlinter``."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")

    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_no_package_shadows_the_standard_library() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    top_level = {name.split(".")[0] for name in config["tool"]["setuptools"]["packages"]}

    assert top_level
    assert not top_level & set(sys.stdlib_module_names)
    assert all(name.startswith("twitter_") for name in top_level), top_level
