"""Accuracy of each covariance summation on real photographs, against the error PyTorch's own float32 G carries.

For the first layers of issue 19 and batches of real photographs (scikit-learn's two sample images, random crops
resized with antialiasing and flipped, as a data pipeline makes them) fed normalized (ImageNet mean and std), in
[0, 1] and as raw [0, 255] pixels, at lam 0.1 and 1e-3:

* the oracle: TrAct by the formula in float64 (``tests/reference.py``) on the float64 weight gradient;
* the floor: the same exact solve applied to PyTorch's float32 weight gradient ``G`` (what any implementation that
  uses the fused ``G``, DESIGN.md decision 2, cannot beat);
* for each summation path, the error it adds: the exact float64 ``G`` solved with the path's covariance, against
  the oracle. ``float64`` is the data-center GPU path, ``float32`` the consumer GPU path (shifted float32 products,
  float64 total), ``rule`` the path a CPU picks for that input (``summation_for``).

The ratio added / floor is under 1 where a path adds less error than the fused float32 ``G`` already carries.
Writes ``benchmarks/results/precision_accuracy.json`` and ``.md``. About 2 minutes here.

    python benchmarks/precision_accuracy.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reporting import write_report

from tests.reference import conv_rows, relative_error, tract_reference
from tract_hub.engine import LayerGeometry, input_covariance, solve_with_covariance, summation_for
from tract_hub.engine.covariance import ACCELERATOR_PARTIAL_ROWS
from tract_hub.engine.precision import FLOAT32_ERROR_CONSTANT

RESULTS = Path(__file__).parent / "results"
MEAN = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(3, 1, 1)
SCALES = {"normalized": lambda x: (x / 255 - MEAN) / STD, "[0,1]": lambda x: x / 255, "[0,255]": lambda x: x}
# name: (batch, image size, out channels, kernel, stride, padding)
LAYERS = {
    "CIFAR stem 3x3, b128": (128, 32, 64, 3, 1, 1),
    "ImageNet stem 7x7/2, b16": (16, 224, 64, 7, 2, 3),
    "ViT-S/16 patch embedding, b8": (8, 224, 384, 16, 16, 0),
}
LAMS = (0.1, 1e-3)


def photographs(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    """``batch`` random crops of scikit-learn's sample photographs, resized to ``size``: float64 in [0, 255]."""
    from sklearn.datasets import load_sample_images

    images = torch.tensor(np.stack(load_sample_images().images)).permute(0, 3, 1, 2).to(torch.float64)
    generator = torch.Generator().manual_seed(seed)
    crops = []
    for index in range(batch):
        image = images[index % len(images)]
        side = int(torch.randint(min(size, 96), 400, (1,), generator=generator))
        top = int(torch.randint(0, image.shape[1] - side + 1, (1,), generator=generator))
        left = int(torch.randint(0, image.shape[2] - side + 1, (1,), generator=generator))
        crop = image[None, :, top : top + side, left : left + side]
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        crops.append(crop.flip(-1) if index % 2 else crop)
    return torch.cat(crops).clamp(0, 255)


def plain_float32(rows: torch.Tensor, slice_rows: int = 2**20) -> torch.Tensor:
    """``rows^T rows`` summed in float32 throughout, 4 MiB slices of rows at a time: the float32 covariance of the
    engine before issue 19 (and of torch_tract), which the issue's accuracy table measured."""
    total = torch.zeros(rows.shape[1], rows.shape[1])
    step = max(1, slice_rows // rows.shape[1])
    for start in range(0, rows.shape[0], step):
        total.addmm_(rows[start : start + step].T, rows[start : start + step])
    return total[None]


def predicted_ratio(x: torch.Tensor, features: int, rows: int, partial_rows: int, lam: float) -> float:
    """The rule's prediction (tract_hub.engine.precision) of the float32 path's added error over the floor."""
    means = x.double().mean((0, 2, 3))
    mean_square = float(x.double().square().mean())
    variance = mean_square - float(means.square().mean())
    spread = variance / (mean_square * lam) ** 0.5
    return FLOAT32_ERROR_CONSTANT * min(partial_rows, rows) / rows * features**0.5 * spread


def measure(layer: str, scale: str) -> list[dict]:
    batch, size, out_channels, kernel, stride, padding = LAYERS[layer]
    x = SCALES[scale](photographs(batch, size)).to(torch.float32)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, out_channels, kernel, stride, padding, bias=False)
    out = conv(x)
    upstream = torch.randn_like(out)
    (g32,) = torch.autograd.grad(out, conv.weight, upstream)
    conv64 = torch.nn.Conv2d(3, out_channels, kernel, stride, padding, bias=False).double()
    conv64.weight.data.copy_(conv.weight.data)
    (g64,) = torch.autograd.grad(conv64(x.double()), conv64.weight, upstream.double())
    geometry = LayerGeometry.for_conv(conv.weight, stride, padding)
    rows = conv_rows(x, geometry.kernel, geometry.stride, geometry.padding, geometry.dilation, 1)
    count = rows.shape[1]
    covariances = {dtype: input_covariance(x, geometry, dtype=dtype)[0] for dtype in (torch.float64, torch.float32)}
    plain = plain_float32(rows[0].to(torch.float32))
    found = []
    for lam in LAMS:
        oracle = tract_reference(g64, rows, lam)
        floor = relative_error(tract_reference(g32, rows, lam), oracle)
        rule = summation_for(x, geometry, lam=lam)
        paths = {str(dtype).removeprefix("torch."): cov for dtype, cov in covariances.items()}
        paths["rule"] = input_covariance(x, geometry, lam=lam)[0]  # the rule's own partial-sum length
        paths["plain_float32"] = plain
        added = {
            name: relative_error(solve_with_covariance(g64, cov, count, lam), oracle) for name, cov in paths.items()
        }
        found.append(
            {
                "layer": layer,
                "input": scale,
                "lam": lam,
                "rows": count,
                "features": geometry.features,
                "g32_error": relative_error(g32, g64),
                "floor": floor,
                "added": added,
                "predicted_float32_ratio": predicted_ratio(x, geometry.features, count, ACCELERATOR_PARTIAL_ROWS, lam),
                "rule": str(rule.dtype).removeprefix("torch."),
                "rule_partial_rows": rule.partial_rows,
            }
        )
    return found


def markdown(results: list[dict]) -> str:
    lines = [
        "TrAct's relative error against the float64 formula, on photographs (`benchmarks/precision_accuracy.py`). "
        "Floor: the exact solve of PyTorch's float32 `G`. Added: the error a summation path adds (float64 `G` "
        "solved with that path's covariance); in brackets, added / floor (under 1: below the floor).",
        "",
        "| layer | input | lam | floor | plain float32 sum (before) | float64 path (data-center GPU) | "
        "float32 path (consumer GPU); predicted ratio | CPU rule: path, added / floor |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        f64, f32, plain = r["added"]["float64"], r["added"]["float32"], r["added"]["plain_float32"]
        chosen = r["added"]["rule"]
        lines.append(
            f"| {r['layer']} | {r['input']} | {r['lam']:g} | {r['floor']:.1e} | {plain:.1e} ({plain / r['floor']:.2g}) "
            f"| {f64:.1e} ({f64 / r['floor']:.1g}) "
            f"| {f32:.1e} ({f32 / r['floor']:.2g}); {r['predicted_float32_ratio']:.2g} "
            f"| {r['rule']}, {chosen / r['floor']:.2g} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", nargs="*", default=list(LAYERS), choices=list(LAYERS))
    parser.add_argument("--out", type=Path, default=RESULTS / "precision_accuracy", help="writes OUT.json, OUT.md")
    args = parser.parse_args()
    results = []
    for layer in args.layers:
        for scale in SCALES:
            results += measure(layer, scale)
            print(f"{layer}, {scale}: done", flush=True)
    write_report(args.out, markdown(results), {"torch": torch.__version__, "results": results})
    worst = [r for r in results if r["input"] == "[0,255]" and r["lam"] == min(LAMS)]
    for r in worst:
        print(f"float32 path, raw [0,255], lam {r['lam']:g}, {r['layer']}: {r['added']['float32']:.2e}")


if __name__ == "__main__":
    main()
