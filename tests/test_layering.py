"""The core stays pure: no Flask, marshmallow or peewee in it, and only engine.py touches durable_rules."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "policy_service"
CORE = ("facts", "conversations", "rulebook", "engine", "decision", "evaluate", "messages", "errors", "conditions",
        "chronology")
FRAMEWORKS = ("flask", "flask_smorest", "marshmallow", "peewee", "playhouse", "werkzeug")


def imported(module: str) -> set[str]:
    """Top-level names of every module a source file imports."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", CORE)
def test_core_imports_no_framework(module):
    """A core module imports no web framework, schema library or database."""
    assert not imported(module) & set(FRAMEWORKS)


def test_only_the_engine_module_imports_durable_rules():
    """durable_rules stays behind one seam."""
    users = {p.stem for p in PACKAGE.glob("*.py") if "durable" in imported(p.stem)}
    assert users == {"engine"}
