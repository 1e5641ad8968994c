"""The README's settings table and the example env file list every setting, as generated."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from twitter_shared.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def load_generator():  # noqa: ANN201 - a module object
    spec = importlib.util.spec_from_file_location("settings_reference", ROOT / "scripts" / "settings_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_settings_table_is_current() -> None:
    generator = load_generator()
    readme = (ROOT / "README.md").read_text()

    assert generator.updated_readme(readme) == readme, "run scripts/settings_reference.py"


def test_env_example_is_current() -> None:
    generator = load_generator()

    assert (ROOT / "compose" / "twitter.env.example").read_text() == generator.env_example()


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_every_setting_is_documented(name: str) -> None:
    assert Settings.model_fields[name].description
    assert f"TWITTER_{name.upper()}" in (ROOT / "README.md").read_text()


def test_example_env_file_loads_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for line in (ROOT / "compose" / "twitter.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            monkeypatch.setenv(key, value)

    settings = Settings()

    assert settings.rate_limit_requests == 300
    assert settings.backup_schedule == "0 */4 * * *"
