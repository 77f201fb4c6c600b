"""The built wheel runs outside the checkout: installed with its locked dependencies into a fresh venv in a
temporary directory, its `policy-service` command decides a send and migrates a database, and the app it
serves is ready (/readyz) and shows the rules with their fixtures (/ui/rules) from the files it ships."""

import configparser
import os
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest
import requests
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from policy_service.core.rulebook import load_rulebook

from .conftest import ROOT, free_port

SETUP = configparser.ConfigParser()
SETUP.read(ROOT / "setup.cfg")
# What a build never needs: the developer's venv, caches, build output, version control.
NOT_SOURCE = shutil.ignore_patterns(".venv", ".git", "build", "dist", "instance", "*.egg-info", "__pycache__",
                                    ".hypothesis", ".pytest_cache", ".ruff_cache", "node_modules", "test-output",
                                    # scripts/postgres.sh's cluster (its socket cannot be copied)
                                    ".postgres")


def listed_packages() -> set[str]:
    return {line.strip() for line in SETUP["options"]["packages"].splitlines() if line.strip()}


def test_every_subpackage_is_listed_for_the_wheel():
    """setup.cfg lists packages by name (rules/ and fixtures/ are mapped in): a new subpackage must be added."""
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "policy_service").rglob("__init__.py")}
    assert found <= listed_packages(), f"add to [options] packages in setup.cfg: {sorted(found - listed_packages())}"


def locked(name: str) -> dict[str, str]:
    """Package name -> pinned version in requirements/<name>.txt."""
    pins = {}
    for line in (ROOT / "requirements" / f"{name}.txt").read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith(("#", "-")):
            requirement = Requirement(line.rstrip(" \\"))
            (specifier,) = requirement.specifier
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


@pytest.mark.parametrize(("lock", "sections"), [("runtime", ["install_requires"]),
                                                ("test", ["install_requires", "test"])])
def test_the_lock_satisfies_setup_cfg(lock, sections):
    """Every dependency in setup.cfg is pinned in the lock at a version its range allows (else: bash scripts/lock)."""
    pins = locked(lock)
    wanted = SETUP["options"]["install_requires"].splitlines()
    if "test" in sections:
        wanted += SETUP["options.extras_require"]["test"].splitlines()
    for line in filter(None, (w.split("#")[0].strip() for w in wanted)):
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements/{lock}.txt: run bash scripts/lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"requirements/{lock}.txt pins {name}=={pins[name]}, setup.cfg wants {requirement.specifier}"


def test_the_runtime_lock_runs_the_versions_ci_tests():
    """The image's lock (runtime) pins each package at the version of the lock CI installs (test)."""
    test = locked("test")
    assert {name: test.get(name) for name in locked("runtime")} == locked("runtime")


def run(*command, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv in a temporary directory with the wheel built from a copy of the sources and the runtime lock."""
    work = tmp_path_factory.mktemp("wheel")
    shutil.copytree(ROOT, work / "source", ignore=NOT_SOURCE)
    pip = [sys.executable, "-m", "pip"]
    # Run outside the checkout with nothing pointing into it, or pip takes the checkout's egg-info as installed.
    env = clean_env(work)
    run(*pip, "wheel", "-q", "--no-deps", "-w", str(work / "dist"), str(work / "source"), cwd=work, env=env)
    (wheel,) = (work / "dist").glob("policy_service-*.whl")
    # A venv without pip of its own (faster); this pip installs into it, reusing its download and wheel cache.
    venv.create(work / "venv", with_pip=False)
    target = ["--python", str(work / "venv" / "bin" / "python")]
    run(*pip, *target, "install", "-q", "--require-hashes", "--no-deps", "-r", str(ROOT / "requirements/runtime.txt"),
        cwd=work, env=env)
    run(*pip, *target, "install", "-q", "--no-deps", str(wheel), cwd=work, env=env)
    return work


def clean_env(work: Path, **extra: str) -> dict[str, str]:
    """The environment without anything pointing back into the checkout."""
    drop = ("PYTHONPATH", "POLICY_", "VIRTUAL_ENV")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(drop)}, **extra}


def test_the_installed_command_decides_a_send_outside_the_checkout(installed):
    """`policy-service check` runs from the venv, in another directory, with the rules the wheel ships."""
    fixture = "01_freeform_just_before_window_closes_opens_a_service_conversation.json"
    shutil.copy(ROOT / "fixtures" / "scenarios" / fixture, installed / "request.json")
    env = clean_env(installed)
    bin_dir = installed / "venv" / "bin"
    where = run(str(bin_dir / "python"), "-c", "import policy_service, policy_service.config as c; "
                "print(policy_service.__file__); print(c.DEFAULT_RULES_DIR)", cwd=installed, env=env).stdout.split()
    assert all(path.startswith(str(installed / "venv")) for path in where), where
    result = run(str(bin_dir / "policy-service"), "check", "request.json", cwd=installed, env=env)
    assert "allow" in result.stdout and "CSW-2.open" in result.stdout, result.stdout
    lint = run(str(bin_dir / "policy-service"), "rules", "lint", cwd=installed, env=env)
    assert "no problems" in lint.stdout


def test_the_installed_app_migrates_then_serves_readyz_and_the_rules_page(installed):
    """`db upgrade` on a new database, then gunicorn from the venv through the installed launcher (the Procfile's
    `policy-service-gunicorn`): /readyz 200, /ui/rules lists rules and fixtures."""
    database = f"sqlite:///{installed / 'log.sqlite3'}"
    env = clean_env(installed, POLICY_DATABASE_URL=database)
    bin_dir = installed / "venv" / "bin"
    upgrade = run(str(bin_dir / "policy-service"), "db", "upgrade", cwd=installed, env=env)
    assert "schema up to date" in upgrade.stdout
    port = free_port()
    log = installed / "gunicorn.log"
    with log.open("wb") as output:
        server = subprocess.Popen([str(bin_dir / "policy-service-gunicorn"), "--bind", f"127.0.0.1:{port}",
                                   "--workers", "1", "policy_service:create_app()"], cwd=installed, env=env,
                                  stdout=output, stderr=subprocess.STDOUT)
    try:
        ready = None
        deadline = time.monotonic() + 90
        while ready is None and time.monotonic() < deadline:
            try:
                ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
            except requests.RequestException:
                assert server.poll() is None, log.read_text()[-3000:]
                time.sleep(0.2)
        assert ready is not None and ready.status_code == 200, ready and ready.text
        assert ready.json()["rules"] == len(load_rulebook(ROOT / "rules").rules)
        page = requests.get(f"http://127.0.0.1:{port}/ui/rules", timeout=30)
        assert page.status_code == 200
        assert "CSW-2.open" in page.text and "01_freeform_just_before_window_closes" in page.text
        static = requests.get(f"http://127.0.0.1:{port}/static/ui/style.css", timeout=5)
        assert static.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=20)
