"""The shipped config.toml loads, sets exactly the defaults, and documents every key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from chatd.settings import Settings, load_settings

CONFIG = Path(__file__).resolve().parents[2] / "config.toml"


@pytest.fixture
def config() -> Path:
    if not CONFIG.exists():
        pytest.fail(f"{CONFIG} is missing: it documents every setting")
    return CONFIG


def test_config_toml_loads_and_sets_exactly_the_defaults(config: Path) -> None:
    assert load_settings(config, {}) == Settings()


def test_config_toml_documents_every_key(config: Path) -> None:
    with config.open("rb") as f:
        document = tomllib.load(f)
    assert set(document) == set(Settings.model_fields)
    for section, info in Settings.model_fields.items():
        model = info.annotation
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        missing = set(model.model_fields) - set(document[section])
        assert not missing, f"[{section}] does not document {sorted(missing)}"
