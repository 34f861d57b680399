"""What patching cannot honour is said, once, in the project's words: an export that drops TrAct, a target that is
not a first layer, a PyTorch without the internals exact mode needs."""

from __future__ import annotations

import logging

import pytest
import timm
import torch

import tract_hub
from tract_hub import _torch_internals as internals
from tract_hub.errors import TrActStateError


def test_torch_export_gives_the_plain_graph_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    model = tract_hub.patch(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten()), target="0")
    x = torch.randn(2, 3, 8, 8)
    with caplog.at_level(logging.WARNING, logger="tract_hub"):
        exported = torch.export.export(model, (x,))
        torch.export.export(model, (x,))
    assert "tract_hub" not in str(exported.graph)
    assert torch.equal(exported.module()(x), model(x))
    assert caplog.text.count("exported as the plain layer") == 1


@pytest.mark.parametrize("target, warns", [("fc", True), ("conv1.0", False)])
def test_a_target_that_is_not_a_first_layer_is_patched_with_a_warning(
    target: str, warns: bool, caplog: pytest.LogCaptureFixture
) -> None:
    model = timm.create_model("resnet10t", num_classes=4)
    with caplog.at_level(logging.WARNING, logger="tract_hub"):
        tract_hub.patch(model, target=target)
    assert [layer.name for layer in tract_hub.patched_layers(model)] == [target]
    assert ("not the model's first layer" in caplog.text) is warns


def test_exact_mode_refuses_a_pytorch_without_its_internals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(internals._REQUIRED_FOR_EXACT, "torch._C._current_graph_task_id (test)", None)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    with pytest.raises(TrActStateError, match="exact=False"):
        tract_hub.patch(model, target="0")
    tract_hub.patch(model, target="0", exact=False)  # per-backward mode needs none of them


def test_fsdp2_without_readable_internals_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(internals, "fsdp_param_groups", lambda: None)
    monkeypatch.setattr(internals, "_is_sharded", lambda module: True)
    with pytest.raises(TrActStateError, match="FSDP2"):
        internals.fsdp_param_of(torch.nn.Linear(3, 2))
