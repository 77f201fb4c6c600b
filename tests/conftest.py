"""Shared fixtures: the real rulebook and engine, and an app on SQLite (and PostgreSQL when configured)."""

import os
from pathlib import Path

import pytest
from playhouse.db_url import connect

from policy_service import create_app, storage
from policy_service.engine import RulesEngine
from policy_service.rulebook import load_rulebook

from .meta_payloads import APP_SECRET, VERIFY_TOKEN

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "rules"
FIXTURES_DIR = ROOT / "fixtures"
# CI (.ci/run) starts PostgreSQL and sets this; the storage tests then run on both databases.
POSTGRES_URL = os.environ.get("POLICY_TEST_DATABASE_URL")
DATABASES = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


@pytest.fixture(scope="session")
def rulebook():
    return load_rulebook(RULES_DIR)


@pytest.fixture(scope="session")
def engine(rulebook):
    return RulesEngine(rulebook)


@pytest.fixture(params=DATABASES)
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    database = connect(POSTGRES_URL)
    with database.bind_ctx(storage.models()):
        database.drop_tables(storage.models(), safe=True)
    database.close()
    return POSTGRES_URL


@pytest.fixture
def app(database_url):
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "WHATSAPP_APP_SECRET": APP_SECRET,
                      "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN})
    yield app
    storage.database_proxy.close()


@pytest.fixture
def client(app):
    return app.test_client()
DATA_DIR = Path(__file__).resolve().parent / "data"
