"""``tract-hub locate NAME`` and ``tract-hub rules``."""

from __future__ import annotations

import json

import pytest

from tract_hub.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["timm:resnet18", "--verify"], ["conv1", "[timm.first_conv]", "Conv2d(3, 64", "the trace agrees", "meta"]),
        (["repvgg_a0"], ["stem.conv_kxk.conv", "stem.conv_1x1.conv", "timm.models.byobnet.ByobNet"]),
        (["torchvision:raft_small"], ["feature_encoder.convnormrelu.0", "context_encoder.convnormrelu.0"]),
        (["torchvision:fasterrcnn_mobilenet_v3_large_320_fpn"], ["backbone.body.0.0", "torchvision.detection"]),
        (["torchvision:regnet_x_400mf"], ["stem.0", "built on cpu"]),  # its constructor cannot run on meta
        (["timm:resnet18", "-k", "in_chans=1"], ["Conv2d(1, 64"]),
    ],
    ids=["timm-verify", "bare-name-parallel", "raft", "detection-no-download", "cpu-build", "kwargs"],
)
def test_locate_prints_the_layers_their_class_and_rule(capsys, argv, expected):
    code, out, _ = run(capsys, "locate", *argv)
    assert code == 0
    for text in expected:
        assert text in out


def test_locate_json_is_one_object(capsys):
    code, out, _ = run(capsys, "locate", "torchvision:resnet18", "--verify", "--json")
    report = json.loads(out)
    assert code == 0 and report["model_class"] == "torchvision.models.resnet.ResNet"
    assert report["first_layers"] == [
        {
            "class": "torch.nn.modules.conv.Conv2d",
            "module": "Conv2d(3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)",
            "name": "conv1",
            "rule": "torchvision.resnet",
        }
    ]
    assert report["traced"] == ["conv1"] and report["disagreement"] is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["resnet_18"], "Did you mean"),
        (["timm:resnet18", "-k", "nokeyvalue"], "KEY=VALUE"),
        (["caffe:resnet18"], "timm:<name> or torchvision:<name>"),
    ],
)
def test_locate_errors_are_one_line_and_exit_1(capsys, argv, message):
    code, out, err = run(capsys, "locate", *argv)
    assert code == 1 and out == ""
    assert err.startswith("tract-hub locate: error:") and message in err


def test_rules_lists_user_rules_first_then_builtin(capsys, registered):
    registered(name="t.cli", match="my.models.Net", layers="stem.conv")
    code, out, _ = run(capsys, "rules")
    _, as_json, _ = run(capsys, "rules", "--json")
    lines = out.splitlines()
    assert code == 0 and "then timm's first_conv, then tracing" in lines[0]
    assert lines[1].split()[:2] == ["t.cli", "user"] and "stem.conv" in lines[1]
    assert any(line.split()[:2] == ["torchvision.resnet", "built-in"] for line in lines)
    rules = json.loads(as_json)
    assert rules[0]["name"] == "t.cli" and rules[0]["builtin"] is False
    assert {"format_version", "layers", "match"} <= set(rules[0])
