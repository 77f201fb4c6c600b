"""Shared fixtures: the real rulebook and engine, and an app on a temporary SQLite file."""

from pathlib import Path

import pytest

from policy_service import create_app
from policy_service.engine import RulesEngine
from policy_service.rulebook import load_rulebook

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "rules"
FIXTURES_DIR = ROOT / "fixtures"


@pytest.fixture(scope="session")
def rulebook():
    return load_rulebook(RULES_DIR)


@pytest.fixture(scope="session")
def engine(rulebook):
    return RulesEngine(rulebook)


@pytest.fixture
def app(tmp_path):
    return create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'test.sqlite3'}"})


@pytest.fixture
def client(app):
    return app.test_client()
DATA_DIR = Path(__file__).resolve().parent / "data"
