"""Helpers shared by the contract tests."""

from __future__ import annotations


def package_schemas(base: type | None = None) -> set[type]:
    """Every subclass of `base` (marshmallow's Schema by default) that the package defines, after importing each of
    its modules (migrations excepted), nested subclasses included: the one walk the tests over every schema share."""
    import importlib
    import pkgutil

    from marshmallow import Schema

    import policy_service

    for module in pkgutil.walk_packages(policy_service.__path__, "policy_service."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    found, pending = set(), [base or Schema]
    while pending:
        for subclass in pending.pop().__subclasses__():
            pending.append(subclass)
            if subclass.__module__.startswith("policy_service."):
                found.add(subclass)
    return found
