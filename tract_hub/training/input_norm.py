"""The paper's ViT ablations that normalize the input patches instead of using TrAct.

* ``patch_standardize``: each non-overlapping input patch (C x p x p values) is standardized to zero mean and
  unit variance before the patch embedding (a LayerNorm without affine parameters over the patch);
* ``dual_patch_norm``: DualPatchNorm (Kumar et al., 2023): a LayerNorm with affine parameters over each patch
  before the embedding and a LayerNorm over the embedding after it.

Both apply to timm ``VisionTransformer``-style models whose ``patch_embed.proj`` is a convolution with stride
equal to its kernel. The embedding keeps its convolution (``patch_embed.proj.proj``), so TrAct can still be
installed on it (``target: patch_embed.proj.proj``).

Example:
    >>> import timm, torch
    >>> vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=4, num_classes=10)
    >>> vit = apply_input_norm(vit, "dual_patch_norm")
    >>> vit(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import RecipeError


class PatchInputNorm(nn.Module):
    """LayerNorm over each non-overlapping input patch, then the original patch-embedding convolution."""

    def __init__(self, proj: nn.Conv2d, affine: bool) -> None:
        super().__init__()
        self.kernel_size = tuple(proj.kernel_size)
        self.norm = nn.LayerNorm(
            proj.in_channels * self.kernel_size[0] * self.kernel_size[1], elementwise_affine=affine
        )
        self.proj = proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        patches = F.unfold(x, self.kernel_size, stride=self.kernel_size)  # B x (C p p) x L
        patches = self.norm(patches.transpose(1, 2)).transpose(1, 2)
        return self.proj(F.fold(patches, size, self.kernel_size, stride=self.kernel_size))


def apply_input_norm(model: nn.Module, kind: str) -> nn.Module:
    """Install ``kind`` (``"patch_standardize"`` or ``"dual_patch_norm"``) on a timm ViT, in place."""
    if kind == "none":
        return model
    patch_embed = getattr(model, "patch_embed", None)
    proj = getattr(patch_embed, "proj", None)
    if not isinstance(proj, nn.Conv2d) or tuple(proj.stride) != tuple(proj.kernel_size) or proj.padding != (0, 0):
        raise RecipeError(
            f"model.input_norm={kind!r} needs a ViT whose patch_embed.proj is a non-overlapping Conv2d "
            f"(timm VisionTransformer); {type(model).__name__} has {type(proj).__name__}"
        )
    patch_embed.proj = PatchInputNorm(proj, affine=kind == "dual_patch_norm")
    if kind == "dual_patch_norm":
        if not isinstance(getattr(patch_embed, "norm", None), nn.Identity):
            raise RecipeError("model.input_norm='dual_patch_norm': patch_embed already has a norm layer")
        patch_embed.norm = nn.LayerNorm(proj.out_channels)
    return model
