"""Rules as data: validation, the registry (duplicates refused), patterns, and the dictionary form."""

from __future__ import annotations

import json
import re

import pytest
import torch
from torch import nn

import tract_hub
from tract_hub import RuleError
from tract_hub.registry import Rule, list_rules, locate, register_rule, unregister_rule


class Net(nn.Module):
    def __init__(self, branches: int = 2) -> None:
        super().__init__()
        self.stem = nn.ModuleList(nn.Conv2d(3, 4, 3, padding=1) for _ in range(branches))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(sum(conv(x) for conv in self.stem).mean((2, 3)))


BAD_RULES = [
    ({"name": "", "match": Net, "layers": "stem"}, "rule name"),
    ({"name": "has space", "match": Net, "layers": "stem"}, "rule name"),
    ({"name": "trace", "match": Net, "layers": "stem"}, "reserved"),
    ({"name": "ok", "match": (), "layers": "stem"}, "at least one model class"),
    ({"name": "ok", "match": "Net", "layers": "stem"}, "qualified class name"),
    ({"name": "ok", "match": Net, "layers": ()}, "module names or patterns"),
    ({"name": "ok", "match": Net, "layers": ("stem", "")}, "module names or patterns"),
    ({"name": "ok", "match": Net, "layers": "stem", "inputs": ((1, 3, 0, 8),)}, "positive integers"),
    ({"name": "ok", "match": Net, "layers": "stem", "inputs": (3,)}, "non-empty list of sizes"),
    ({"name": "ok", "match": Net, "layers": "stem", "forward_kwargs": {1: 2}}, "forward_kwargs"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_RULES, ids=[m for _, m in BAD_RULES])
def test_malformed_rules_are_refused_with_the_reason(fields, message):
    with pytest.raises(RuleError, match=message):
        Rule(**fields)


def test_a_rule_stores_classes_by_qualified_name_and_matches_subclasses():
    rule = Rule(name="t.net", match=Net, layers="stem.0")
    assert rule.match == (f"{Net.__module__}.{Net.__qualname__}",) and rule.layers == ("stem.0",)

    class SubNet(Net):
        pass

    assert rule.matches(SubNet()) and not rule.matches(nn.Sequential())


@pytest.mark.parametrize(
    ("layers", "branches", "expected"),
    [
        (("stem.0",), 3, ["stem.0"]),
        (("stem.*",), 3, ["stem.0", "stem.1", "stem.2"]),
        (("stem.*", "head"), 1, ["stem.0", "head"]),
        (("stem.0", "missing"), 2, None),
        (("stem",), 2, None),  # a ModuleList is not a Linear/convolution
    ],
)
def test_layers_resolve_to_linear_and_conv_modules_or_not_at_all(layers, branches, expected):
    assert Rule(name="t.net", match=Net, layers=layers).resolve(Net(branches)) == expected


def test_duplicate_names_are_refused(registered):
    registered(name="t.dup", match=Net, layers="stem.0")
    with pytest.raises(RuleError, match=re.escape("already named 't.dup'")):
        register_rule(name="t.dup", match=Net, layers="stem.1")
    with pytest.raises(RuleError, match=re.escape("built-in rule is already named 'torchvision.resnet'")):
        register_rule(name="torchvision.resnet", match=Net, layers="stem.0")


def test_register_takes_a_rule_or_its_fields_but_not_builtin(registered):
    rule = registered(Rule(name="t.obj", match=Net, layers="stem.0"))
    assert not rule.builtin and rule in list_rules()
    with pytest.raises(RuleError, match="reserved"):
        register_rule(name="t.builtin", match=Net, layers="stem.0", builtin=True)
    with pytest.raises(RuleError, match="not both"):
        register_rule(rule, name="t.other")


def test_unregister_returns_the_rule_and_names_close_ones_when_unknown(registered):
    registered(name="t.gone", match=Net, layers="stem.0")
    registered(name="t.kept", match=Net, layers="stem.0")
    assert unregister_rule("t.gone").name == "t.gone"
    assert "t.gone" not in {rule.name for rule in list_rules()}
    with pytest.raises(RuleError, match=re.escape("did you mean 't.kept'")) as error:
        unregister_rule("t.kep")
    assert isinstance(error.value, LookupError | ValueError)


def test_user_rules_come_first_in_registration_order(registered):
    first = registered(name="t.first", match=Net, layers="stem.1")
    second = registered(name="t.second", match=Net, layers="stem.0")
    rules = list_rules()
    assert rules[:2] == (first, second)
    assert all(rule.builtin for rule in rules[2:]) and len(rules) > 2
    assert [(layer.name, layer.rule) for layer in locate(Net())] == [("stem.1", "t.first")]


def test_a_user_rule_overrides_a_builtin_rule(registered):
    import torchvision

    with torch.device("meta"):
        model = torchvision.models.resnet18()
    assert [(layer.name, layer.rule) for layer in locate(model)] == [("conv1", "torchvision.resnet")]
    registered(name="t.resnet", match=type(model), layers="layer1.0.conv1")
    assert [(layer.name, layer.rule) for layer in locate(model)] == [("layer1.0.conv1", "t.resnet")]


def test_a_rule_that_does_not_resolve_falls_through_and_says_so(registered):
    registered(name="t.stale", match=Net, layers="old_stem")
    located = locate(Net())
    assert located.names == ["stem.0", "stem.1"] and located[0].rule == "trace"
    assert any("t.stale" in line and "old_stem" in line for line in located.tried)


def test_rules_round_trip_through_sorted_json():
    rule = Rule(
        name="t.json",
        match=Net,
        layers=("stem.*",),
        inputs=((1, 3, 16, 16),),
        forward_kwargs={"steps": 1},
        description="two branches",
    )
    text = json.dumps(rule.to_dict(), sort_keys=True)
    data = json.loads(text)
    assert list(data) == sorted(data) and data["format_version"] == 1
    assert Rule.from_dict(data) == rule


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "t.x", "match": ["a.B"], "layer": ["stem"]}, "unknown rule key 'layer'; did you mean 'layers'"),
        ({"name": "t.x", "match": ["a.B"]}, "missing layers"),
        ({"name": "t.x", "match": ["a.B"], "layers": ["s"], "format_version": 2}, "format_version 2"),
        (["t.x"], "mapping"),
    ],
)
def test_from_dict_refuses_unknown_keys_missing_fields_and_other_versions(data, message):
    with pytest.raises(RuleError, match=message):
        Rule.from_dict(data)


def test_every_builtin_rule_is_a_valid_rule_with_a_unique_name():
    builtin = [rule for rule in list_rules() if rule.builtin]
    assert len({rule.name for rule in builtin}) == len(builtin) > 0
    assert all(Rule.from_dict(rule.to_dict()).to_dict() == rule.to_dict() for rule in builtin)


def test_the_package_exports_the_registry_api():
    for name in ("locate", "FirstLayer", "Rule", "register_rule", "unregister_rule", "list_rules"):
        assert getattr(tract_hub, name) is getattr(tract_hub.registry, name)
