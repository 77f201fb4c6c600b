"""The package's folders are its layers and imports run one way:
core <- contract <- store <- review <- service <- web <- cli.

Every import in every module of policy_service (absolute, relative, at module level or inside a function)
is resolved to the module it names; a module may import only its own layer or a lower one. The core
imports no web framework, schema library or database driver, and only core/engine.py touches durable_rules.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "policy_service"
# Lowest first. `config` holds defaults only and may be read by any layer; the app factory
# (policy_service/__init__.py) wires the web layer together and is imported by the command line alone.
LAYERS = ("core", "contract", "store", "review", "service", "web", "cli")
RANK = {"config": -1, **{layer: rank for rank, layer in enumerate(LAYERS)}, "__init__": LAYERS.index("web") + 0.5}
FRAMEWORKS = {"flask", "flask_smorest", "marshmallow", "webargs", "peewee", "playhouse", "psycopg2", "werkzeug",
              "gunicorn"}
MAX_ROOT_MODULES = 6
# Lower layers a layer may not import although they sit below it: the web layer only speaks HTTP and reaches
# stored data through the service layer (one decision pipeline for the API, the pages, the CLI and Python).
SKIPPED = {"web": {"store"}}
# Modules allowed to break a SKIPPED rule for now, each with why; test_exemptions_are_still_needed keeps
# this list from outliving its reason.
EXEMPT: dict[str, str] = {}


def dotted_name(path: Path) -> str:
    """policy_service/core/facts.py -> policy_service.core.facts; a package's __init__ is the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    return {dotted_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(name: str) -> str:
    """The layer a dotted policy_service name belongs to: a subpackage, `config`, or `__init__` (app factory)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(name: str, source: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, dotted name) of every module the source imports, relative imports resolved.

    `from X import y` counts as importing X.y when X.y is a module of the package, else X.
    """
    known = modules()
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.append((node.lineno, candidate if candidate in known else target))
    return found


def violations(name: str, source: str, is_package: bool = False) -> list[str]:
    """Every import in the source that runs against the layers, as 'module:line imports target'."""
    problems = []
    own = layer_of(name)
    for line, target in imports(name, source, is_package):
        top = target.split(".")[0]
        if top == "policy_service":
            other = layer_of(target)
            if other not in RANK:
                problems.append(f"{name}:{line} imports {target}, which is in no layer")
            elif RANK[other] > RANK[own]:
                problems.append(f"{name}:{line} imports {target} ({other} is above {own})")
            elif other in SKIPPED.get(own, ()):
                problems.append(f"{name}:{line} imports {target} ({own} reaches {other} through the service layer)")
        elif own in ("core", "config") and top in FRAMEWORKS:
            problems.append(f"{name}:{line} imports {target} (the {own} imports no framework or database)")
    return problems


@pytest.mark.parametrize("name", sorted(modules()))
def test_imports_run_one_way(name):
    """No module imports a layer above its own (and the core imports no framework or database)."""
    path = modules()[name]
    found = violations(name, path.read_text(), path.name == "__init__.py")
    if name in EXEMPT:
        found = [problem for problem in found if "through the service layer" not in problem]
    assert found == []


def test_exemptions_are_still_needed():
    """An exempted module still breaks a SKIPPED rule; once it does not, it leaves EXEMPT."""
    for name in sorted(EXEMPT):
        path = modules().get(name)
        assert path is not None and any("through the service layer" in problem for problem in violations(
            name, path.read_text(), path.name == "__init__.py")), f"{name} needs no exemption any more: remove it"


def test_every_module_is_in_a_layer():
    """A new subpackage must be placed in LAYERS before code goes into it."""
    assert {layer_of(name) for name in modules()} - {"__init__"} <= set(RANK)


def test_the_package_root_keeps_only_the_app_factory_config_and_entry_points():
    """At most a handful of modules sit beside the layers."""
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, root


def test_only_the_engine_module_imports_durable_rules():
    """durable_rules stays behind one seam."""
    def uses_durable(name: str, path: Path) -> bool:
        return any(t.split(".")[0] == "durable" for _, t in imports(name, path.read_text(), path.name == "__init__.py"))

    users = {name for name, path in modules().items() if uses_durable(name, path)}
    assert users == {"policy_service.core.engine"}


@pytest.mark.parametrize("name, source, wrong", [
    ("policy_service.core.facts", "from ..web import api\n", "policy_service.web.api"),
    ("policy_service.core.facts", "from ..store.decision_log import DecisionRecord\n",
     "policy_service.store.decision_log"),
    ("policy_service.core.facts", "def f():\n    from policy_service.contract import schemas\n",
     "policy_service.contract.schemas"),
    ("policy_service.store.histories", "from ..review import reconciliation\n", "policy_service.review.reconciliation"),
    ("policy_service.review.lint", "from .. import create_app\n", "policy_service"),
    ("policy_service.web.api", "import policy_service.cli\n", "policy_service.cli"),
    ("policy_service.web.pages", "from ..store import decision_log\n", "policy_service.store.decision_log"),
    ("policy_service.web.operations", "from .. import store\n", "policy_service.store"),
    ("policy_service.web.api", "def f():\n    import policy_service.store.histories\n",
     "policy_service.store.histories"),
    ("policy_service.core.facts", "import marshmallow\n", "marshmallow"),
    ("policy_service.core.rulebook", "from peewee import Model\n", "peewee"),
])
def test_a_wrong_import_is_caught(name, source, wrong):
    """The checker is not vacuous: each kind of wrong-way import is reported, naming its target."""
    found = violations(name, source)
    assert len(found) == 1 and f"imports {wrong} " in found[0] + " ", found


def test_imports_within_a_layer_and_downwards_pass():
    """Same-layer and downward imports are allowed (so the checks above fail for the right reason)."""
    assert violations("policy_service.web.pages", "from ..review import coverage\nfrom .api import decide\n") == []
    assert violations("policy_service.web.pages", "from ..service import decisions\nfrom ..contract import queries\n"
                      "from .. import config\n") == []
    assert violations("policy_service.service.decisions", "from ..store import decision_log\n") == []
    assert violations("policy_service.cli", "from .. import create_app\nfrom ..web import operations\n", True) == []
