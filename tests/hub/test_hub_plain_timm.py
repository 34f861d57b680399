"""A saved timm checkpoint loads with plain timm (no tract_hub in the process) and with tract_hub, offline,
through ``hf-hub:`` from a Hugging Face cache tree built with the layout huggingface_hub reads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hub_helpers import COMMIT, build_hf_cache
from safetensors.torch import save_file

import tract_hub
from tract_hub.models import create_model

PLAIN_TIMM = textwrap.dedent(
    """
    import sys
    import timm, torch
    from safetensors.torch import load_file

    io = load_file(sys.argv[1])
    model = timm.create_model("hf-hub:org/vit-tract", pretrained=True).eval()
    with torch.no_grad():
        assert torch.equal(model(io["x"]), io["y"]), "outputs differ"
    try:
        timm.create_model("hf-hub:org/cifar-tract", pretrained=True)
    except RuntimeError as error:
        assert "Unknown model" in str(error), error
    else:
        raise AssertionError("plain timm built tract_hub's CIFAR ResNet without tract_hub")
    assert "tract_hub" not in sys.modules, "tract_hub was imported"
    print("PLAIN-TIMM-OK")
    """
)


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module, torch.nn.Module]:
    """A cache with org/vit-tract (timm test_vit at 32 px, TrAct-patched) and org/cifar-tract (tract_resnet8_cifar)."""
    root = tmp_path_factory.mktemp("hub")
    torch.manual_seed(0)
    vit = tract_hub.patch(create_model("timm:test_vit", num_classes=4, img_size=32), lam=0.1, target="patch_embed.proj")
    cifar = create_model("timm:tract_resnet8_cifar", num_classes=10, in_chans=1)
    cache = root / "cache"
    build_hf_cache(cache, "org/vit-tract", tract_hub.save_pretrained(vit.eval(), root / "vit", repo_id="org/vit-tract"))
    build_hf_cache(cache, "org/cifar-tract", tract_hub.save_pretrained(cifar.eval(), root / "cifar"))
    return cache, vit, cifar


@pytest.mark.slow  # a subprocess
def test_plain_timm_loads_the_checkpoint_without_tract_hub(hub_cache: tuple, tmp_path: Path) -> None:
    cache, vit, _ = hub_cache
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        save_file({"x": x, "y": vit(x)}, tmp_path / "io.safetensors")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))},
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_HUB_CACHE": str(cache),
    }
    result = subprocess.run(
        [sys.executable, "-c", PLAIN_TIMM, str(tmp_path / "io.safetensors")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "PLAIN-TIMM-OK" in result.stdout


@pytest.mark.parametrize("source", ["hf-hub:org/vit-tract", "org/vit-tract", f"hf-hub:org/vit-tract@{COMMIT}"])
def test_tract_hub_loads_the_same_cache_offline(hub_cache: tuple, source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    cache, vit, _ = hub_cache
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    loaded = tract_hub.from_pretrained(source).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(vit(x), loaded(x))


def test_cache_dir_argument_is_honoured(hub_cache: tuple, offline_hub: Path) -> None:
    cache, _, cifar = hub_cache
    loaded = tract_hub.from_pretrained("hf-hub:org/cifar-tract", cache_dir=cache).eval()
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(cifar(x), loaded(x))


def test_pull_copies_the_cached_checkpoint(hub_cache: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    from tract_hub.hub import pull

    cache, _, _ = hub_cache
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    copy = pull("hf-hub:org/vit-tract", tmp_path / "copy", cache_dir=cache)
    snapshot = cache / "models--org--vit-tract" / "snapshots" / COMMIT
    assert sorted(path.name for path in copy.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    for path in copy.iterdir():
        assert path.read_bytes() == (snapshot / path.name).read_bytes()
        assert not path.is_symlink()
