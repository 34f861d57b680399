"""from_pretrained's options: bad values are refused before anything is read; unknown heads are not guessed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import tract_hub
from tract_hub.errors import InvalidArgumentError
from tract_hub.pretrained.heads import head_num_classes, replace_head

# (case, keyword arguments, message fragment)
BAD_OPTIONS = [
    ("lam without patched", {"lam": 0.1}, "without patched=True"),
    ("negative lam", {"patched": True, "lam": -0.1}, "positive finite"),
    ("zero classes", {"num_classes": 0}, "positive integer"),
    ("bool classes", {"num_classes": True}, "positive integer"),
    ("string classes", {"num_classes": "3"}, "positive integer"),
]


@pytest.mark.parametrize(("case", "options", "fragment"), BAD_OPTIONS, ids=[b[0] for b in BAD_OPTIONS])
def test_bad_options_are_refused(case: str, options: dict, fragment: str, saved_timm: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=fragment):
        tract_hub.from_pretrained(saved_timm, **options)


def test_unknown_head_is_not_guessed() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.LazyLinear(10))
    assert head_num_classes(model) is None
    with pytest.raises(InvalidArgumentError, match="does not know the classifier head of Sequential"):
        replace_head(model, 3)


# (lam recorded at save time, lam given to from_pretrained, lam installed)
LAMS = [(0.3, None, 0.3), (None, None, 0.1), (0.3, 0.05, 0.05)]


@pytest.mark.parametrize(("recorded", "given", "installed"), LAMS, ids=["recorded", "default", "explicit"])
def test_patched_lam_is_explicit_else_recorded_else_default(
    recorded: float | None, given: float | None, installed: float, saved_timm: Path, tmp_path: Path
) -> None:
    metadata = {"first_layers": ["conv1.0"], "lam": recorded}
    path = tract_hub.save_pretrained(tract_hub.from_pretrained(saved_timm), tmp_path / "c", metadata=metadata)
    model = tract_hub.from_pretrained(path, patched=True, lam=given)
    assert [(layer.name, layer.lam) for layer in tract_hub.patched_layers(model)] == [("conv1.0", installed)]


@pytest.mark.parametrize(("options", "exact"), [({}, True), ({"exact": False}, False)], ids=["default", "paper"])
def test_patched_loading_uses_the_mode_patch_uses(options: dict, exact: bool, saved_timm: Path) -> None:
    """from_pretrained(patched=True) and tract_hub.patch agree: exact mode unless asked otherwise."""
    model = tract_hub.from_pretrained(saved_timm, patched=True, **options)
    assert {layer.exact for layer in tract_hub.patched_layers(model)} == {exact}
