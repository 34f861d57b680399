"""Shared fixtures of the registry tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tract_hub.registry import Rule, list_rules, register_rule, unregister_rule


@pytest.fixture
def registered() -> Iterator[Callable[..., Rule]]:
    """``register_rule`` for one test: the rules it registers are removed after it."""
    names: list[str] = []

    def add(*args, **kwargs) -> Rule:
        rule = register_rule(*args, **kwargs)
        names.append(rule.name)
        return rule

    yield add
    for name in names:
        if any(rule.name == name for rule in list_rules()):
            unregister_rule(name)
