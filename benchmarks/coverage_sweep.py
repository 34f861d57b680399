"""Coverage sweep: locate, verify and patch every timm architecture and every torchvision builder.

For each architecture (``timm.list_models()``, which includes tract_hub's CIFAR ResNets, and
``torchvision.models.list_models()``):

1. build it on the meta device (no weights, no memory; on the CPU when its constructor needs real tensors);
2. ``tract_hub.locate(model, verify=True)``: the first layer(s), the rule that found them, and the trace's own
   answer (a disagreement is a failure); for timm, also compare with ``pretrained_cfg["first_conv"]``;
3. ``tract_hub.patch(model)`` (then ``unpatch``): patched, or refused with the reason;
4. on a sample (the first architecture of each model class and first-layer class, in name order, up to
   ``--max-params`` parameters): build it for real on the CPU, patch it, run one forward/backward at small
   resolution and compare each first layer's weight gradient with the float64 formula
   ``G @ inverse(x^T x / N + lam I)`` built from the layer's recorded input and output gradient
   (``tests/registry/gradient_reference.py``).

Writes one JSON row per architecture to ``<out>.rows.tmp`` as it goes (``--resume`` skips the rows already
there), then ``<out>.json`` (rows and totals) and ``<out>.md`` (totals and one table row per architecture), and
prints the totals.

    nice -n 10 python benchmarks/coverage_sweep.py                       # everything (28 minutes on 2 cores)
    python benchmarks/coverage_sweep.py --source torchvision --names resnet18,raft_small
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import logging
import math
import platform
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn
from torch.utils._pytree import tree_flatten

import tract_hub
from tract_hub.core import class_name
from tract_hub.errors import FirstLayerNotFoundError, TrActError
from tract_hub.models import known_architectures

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "coverage"
LAM = 0.1
RELATIVE_TOLERANCE = 1e-3


def _load_reference() -> Any:
    """The tests' float64 gradient reference (``tests/registry/gradient_reference.py``)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("tests.registry.gradient_reference")


REFERENCE = _load_reference()


# -- building --------------------------------------------------------------------------------------------------
def build(source: str, arch: str, device: str) -> nn.Module:
    """The architecture with its default constructor arguments, without any download."""
    with torch.device(device):
        if source == "timm":
            import timm

            return timm.create_model(arch)
        builder = torchvision.models.get_model_builder(arch)
        kwargs = {"weights_backbone": None} if "weights_backbone" in inspect.signature(builder).parameters else {}
        return builder(**kwargs)


def _stem(layer: Any, trace: Any) -> dict[str, Any]:
    module = layer.module
    row: dict[str, Any] = {"name": layer.name, "class": class_name(module)}
    if isinstance(module, nn.Linear):
        row.update(kind="linear", shape=f"{module.in_features}->{module.out_features}")
    else:
        row.update(
            kind=f"conv{len(module.kernel_size)}d",
            shape=f"{module.in_channels}->{module.out_channels} k{'x'.join(map(str, module.kernel_size))}"
            f" s{'x'.join(map(str, module.stride))}" + (f" g{module.groups}" if module.groups > 1 else ""),
        )
    if trace is not None:
        calls = [call for call in trace.calls if call.module == layer.name]
        row["input_shapes"] = sorted({"x".join(map(str, call.input_shape)) for call in calls})
    return row


def locate_row(source: str, arch: str) -> tuple[dict[str, Any], nn.Module]:
    """Build, locate with verification, patch and unpatch one architecture."""
    row: dict[str, Any] = {"source": source, "architecture": arch}
    try:
        model, row["built_on"] = build(source, arch, "meta"), "meta"
    except Exception as error:  # constructors that compute with tensors
        row["meta_build_error"] = f"{type(error).__name__}: {error}"[:300]
        model, row["built_on"] = build(source, arch, "cpu"), "cpu"
    row["model_class"] = class_name(model)
    row["parameters"] = sum(p.numel() for p in model.parameters())
    try:
        located = tract_hub.locate(model, verify=True)
    except FirstLayerNotFoundError:
        if row["built_on"] != "meta":
            raise
        located = None
    if row["built_on"] == "meta" and (located is None or not located.verified):
        # its forward needs real data the meta build does not have (e.g. tensors computed in the constructor)
        row["meta_locate"] = located.disagreement if located is not None else "FirstLayerNotFoundError"
        model, row["built_on"] = build(source, arch, "cpu"), "cpu"
        located = tract_hub.locate(model, verify=True)
    row["first_layers"] = located.names
    row["rule"] = located[0].rule
    row["traced"] = located.traced
    row["trace_device"] = located.trace.device if located.trace else None
    row["model_input"] = ["x".join(map(str, shape)) for shape in located.trace.inputs] if located.trace else None
    row["disagreement"] = located.disagreement
    row["verified"] = located.verified
    row["stems"] = [_stem(layer, located.trace) for layer in located]
    if source == "timm":
        first_conv = model.pretrained_cfg.get("first_conv")
        names = [first_conv] if isinstance(first_conv, str) else list(first_conv or [])
        row["first_conv"] = names
        row["first_conv_agrees"] = sorted(names) == sorted(located.names) if names else None
    try:
        tract_hub.patch(model, LAM)
        row["patched"] = [layer.name for layer in tract_hub.patched_layers(model)] == located.names
        tract_hub.unpatch(model)
    except TrActError as error:
        row["patched"] = False
        row["refused"] = f"{type(error).__name__}: {error}"
    return row, model


# -- the gradient check ----------------------------------------------------------------------------------------
def _detection_targets(model: nn.Module, count: int, size: int) -> list[dict[str, torch.Tensor]]:
    box = torch.tensor([[size * 0.1, size * 0.1, size * 0.7, size * 0.8]])
    target = {"boxes": box, "labels": torch.tensor([1])}
    if getattr(model, "roi_heads", None) is not None and getattr(model.roi_heads, "mask_head", None) is not None:
        target["masks"] = torch.zeros(1, size, size, dtype=torch.uint8)
        target["masks"][:, 8:40, 8:40] = 1
    if getattr(model, "roi_heads", None) is not None and getattr(model.roi_heads, "keypoint_head", None) is not None:
        keypoints = model.roi_heads.keypoint_predictor.kps_score_lowres.out_channels
        target["keypoints"] = torch.tensor([[[size * 0.3, size * 0.4, 1.0]] * keypoints])
    return [target] * count


def _inputs(model: nn.Module, source: str, arch: str, row: dict[str, Any]) -> list[tuple[tuple, dict]]:
    """Candidate (args, kwargs) for a small real forward, smallest first."""
    shapes = [tuple(int(v) for v in shape.split("x")) for shape in row["model_input"] or []]
    if not shapes:
        return []
    first = shapes[0]
    count = len(shapes)
    generator = torch.Generator().manual_seed(0)

    def images(*spatial: int) -> tuple:
        return tuple(torch.rand(2, *first[1 : -len(spatial)], *spatial, generator=generator) for _ in range(count))

    if source == "torchvision" and "detection" in row["model_class"]:
        return [((list(torch.rand(2, 3, 64, 64, generator=generator)), _detection_targets(model, 2, 64)), {})]
    if "optical_flow" in row["model_class"]:
        return [((*images(128, 128),), {"num_flow_updates": 2})]
    if len(first) == 5:
        frames, full = first[2], first[3:]
        return [((*images(min(frames, 8), 64, 64),), {}), ((*images(frames, *full),), {})]
    if len(first) == 4:
        sizes = [size for size in [(64, 64), (96, 96), (128, 128)] if math.prod(size) < math.prod(first[2:])]
        sizes += [first[2:], (299, 299)]  # Inception's auxiliary head needs 299 in training mode
        return [((*images(*size),), {}) for size in dict.fromkeys(sizes)]
    return [((*images(*first[2:]),), {})]


def _loss(output: Any) -> torch.Tensor:
    if (
        isinstance(output, dict)
        and output
        and all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in output.values())
    ):
        return sum(output.values())  # detection losses
    tensors = [t for t in tree_flatten(output)[0] if isinstance(t, torch.Tensor) and t.is_floating_point()]
    return sum((t.float() * torch.linspace(-1, 1, t.numel()).view(t.shape)).sum() for t in tensors)


def _real_builds(source: str, arch: str) -> list[tuple[str, Any]]:
    """Ways to build the model for real: timm models at 64 pixels first (ViTs fix their size at build time)."""
    builds = []
    if source == "timm":
        import timm

        builds.append(("img_size=64", lambda: timm.create_model(arch, img_size=64)))
    builds.append(("default", lambda: build(source, arch, "cpu")))
    return builds


def _run(model: nn.Module, names: list[str], attempts: list[tuple[tuple, dict]]) -> tuple[Any, tuple, str]:
    """The recorder of the first (args, kwargs) the model accepts, or ``None`` and the last error."""
    last_error = "no input to try"
    for args, kwargs in attempts:
        model.zero_grad(set_to_none=True)
        try:
            with REFERENCE.LayerCallRecorder(model, names) as recorder:
                _loss(model(*args, **kwargs)).backward()
        except TrActError:
            raise
        except Exception as error:  # the input size does not suit this model: try the next one
            last_error = f"{type(error).__name__}: {str(error)[:200]}"
            continue
        return recorder, args, ""
    return None, (), last_error


def _compare(model: nn.Module, names: list[str], recorder: Any) -> dict[str, float | None]:
    """Relative max error of each layer's weight gradient against the formula (``None``: no gradient at all)."""
    errors: dict[str, float | None] = {}
    for name in names:
        expected = recorder.expected_grad(name, LAM)
        got = model.get_submodule(name).weight.grad
        scale = expected.abs().max().item()
        if got is None:
            errors[name] = None
        elif scale == 0:
            errors[name] = float(got.abs().max())
        else:
            errors[name] = float((got.double() - expected).abs().max() / scale)
    return errors


def gradient_check(source: str, arch: str, row: dict[str, Any]) -> dict[str, Any]:
    """One real forward/backward of the patched model; each first layer's gradient against the formula."""
    started = time.perf_counter()
    last_error = "could not be built"
    for variant, make in _real_builds(source, arch):
        torch.manual_seed(0)
        try:
            model = make().float()
        except Exception as error:  # the architecture does not take this argument
            last_error = f"{variant}: {type(error).__name__}: {str(error)[:200]}"
            continue
        tract_hub.patch(model, LAM)
        model.train()
        names = [layer.name for layer in tract_hub.patched_layers(model)]
        recorder, args, last_error = _run(model, names, _inputs(model, source, arch, row))
        if recorder is None:
            continue
        errors = _compare(model, names, recorder)
        condition = max(recorder.condition(name, LAM) for name in names)
        worst = max((e for e in errors.values() if e is not None), default=None)
        shapes = [tuple(t.shape) for t in tree_flatten(args)[0] if isinstance(t, torch.Tensor)][:2]
        return {
            "checked": True,
            "passed": worst is not None and worst <= RELATIVE_TOLERANCE and None not in errors.values(),
            "max_relative_error": worst,
            "errors": errors,
            "input": ["x".join(map(str, shape)) for shape in shapes],
            "built_with": variant,
            "condition": condition,
            "seconds": round(time.perf_counter() - started, 2),
        }
    return {"checked": False, "reason": last_error, "seconds": round(time.perf_counter() - started, 2)}


# -- the sweep -------------------------------------------------------------------------------------------------
def architectures(source: str) -> list[tuple[str, str]]:
    sources = ("timm", "torchvision") if source == "all" else (source,)
    return [(s, arch) for s in sources for arch in sorted(known_architectures(s))]


def sweep(args: argparse.Namespace) -> list[dict[str, Any]]:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows_path = out.with_name(out.name + ".rows.tmp")  # one JSON row per line, written as the sweep goes
    done: dict[tuple[str, str], dict[str, Any]] = {}
    if args.resume and rows_path.exists():
        for line in rows_path.read_text().splitlines():
            row = json.loads(line)
            done[(row["source"], row["architecture"])] = row
    elif rows_path.exists():
        rows_path.unlink()
    todo = architectures(args.source)
    if args.names:
        wanted = set(args.names.split(","))
        todo = [(s, a) for s, a in todo if a in wanted]
    checked_groups = {
        (row["model_class"], tuple(stem["class"] for stem in row.get("stems", [])))
        for row in done.values()
        if row.get("gradient", {}).get("checked")
    }
    rows = []
    with rows_path.open("a") as sink:
        for index, (source, arch) in enumerate(todo):
            if (source, arch) in done:
                rows.append(done[(source, arch)])
                continue
            started = time.perf_counter()
            try:
                row, model = locate_row(source, arch)
                del model
                group = (row["model_class"], tuple(stem["class"] for stem in row["stems"]))
                wanted = args.gradient == "all" or (args.gradient == "sample" and group not in checked_groups)
                if wanted and row.get("patched") and row["parameters"] <= args.max_params:
                    row["gradient"] = gradient_check(source, arch, row)
                    if row["gradient"].get("checked"):
                        checked_groups.add(group)
            except Exception as error:
                row = {"source": source, "architecture": arch, "error": f"{type(error).__name__}: {error}"[:500]}
                logging.debug("%s:%s\n%s", source, arch, traceback.format_exc())
            row["seconds"] = round(time.perf_counter() - started, 2)
            sink.write(json.dumps(row, sort_keys=True) + "\n")
            sink.flush()
            rows.append(row)
            status = "ok" if row.get("verified") and row.get("patched") else "CHECK"
            print(f"[{index + 1}/{len(todo)}] {source}:{arch} {status} {row.get('first_layers')} {row['seconds']}s")
    return rows


def _group_label(row: dict[str, Any]) -> str:
    classes = "+".join(sorted({stem["class"].rsplit(".", 1)[-1] for stem in row["stems"]}))
    return f"{row['model_class'].rsplit('.', 1)[-1]}/{classes}"


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_source: dict[str, Any] = {}
    for source in sorted({row["source"] for row in rows}):
        mine = [row for row in rows if row["source"] == source]
        located = [row for row in mine if row.get("first_layers")]
        gradient = [row["gradient"] for row in mine if row.get("gradient")]
        first_conv = [row for row in mine if row.get("first_conv_agrees") is not None]
        by_source[source] = {
            "architectures": len(mine),
            "located": len(located),
            "verified_by_trace": sum(bool(row.get("verified")) for row in mine),
            "disagreements": sorted(row["architecture"] for row in mine if row.get("disagreement")),
            "patched": sum(bool(row.get("patched")) for row in mine),
            "refused": {row["architecture"]: row["refused"] for row in mine if row.get("refused")},
            "errors": {row["architecture"]: row["error"] for row in mine if row.get("error")},
            "parallel_first_layers": sorted(row["architecture"] for row in located if len(row["first_layers"]) > 1),
            "first_layer_classes": dict(Counter(s["class"] for row in located for s in row["stems"]).most_common()),
            "found_by": dict(Counter(row["rule"] for row in located).most_common()),
            "traced_on_cpu": sorted(row["architecture"] for row in mine if row.get("trace_device") == "cpu"),
            "built_on_cpu": sorted(row["architecture"] for row in mine if row.get("built_on") == "cpu"),
            "input_changed_before_first_layer": sorted(
                row["architecture"]
                for row in located
                if any(
                    shape not in (row.get("model_input") or [])
                    for s in row["stems"]
                    for shape in s.get("input_shapes", [])
                )
            ),
            "gradient_checked": sum(bool(g.get("checked")) for g in gradient),
            "gradient_passed": sum(bool(g.get("passed")) for g in gradient),
            "gradient_failed": sorted(
                row["architecture"] for row in mine if row.get("gradient", {}).get("passed") is False
            ),
            "gradient_not_run": {
                row["architecture"]: row["gradient"]["reason"]
                for row in mine
                if row.get("gradient") and not row["gradient"].get("checked")
            },
            "groups_without_gradient_check": sorted(
                {_group_label(row) for row in located}
                - {_group_label(row) for row in mine if row.get("gradient", {}).get("checked")}
            ),
            "gradient_worst_relative_error": max(
                (g["max_relative_error"] for g in gradient if g.get("max_relative_error") is not None), default=None
            ),
        }
        if first_conv:
            by_source[source]["first_conv_available"] = len(first_conv)
            by_source[source]["first_conv_agrees"] = sum(row["first_conv_agrees"] for row in first_conv)
    return by_source


def _markdown(rows: list[dict[str, Any]], summary: dict[str, Any], environment: dict[str, Any]) -> str:
    lines = ["# Coverage sweep: first layers of every timm and torchvision architecture", ""]
    lines.append("Environment: " + ", ".join(f"{k} {v}" for k, v in environment.items()))
    lines += [
        "",
        "| source | architectures | located | verified by trace | patched | parallel | traced on CPU | "
        "gradient checked | gradient passed | worst rel. error |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for source, t in summary.items():
        worst = t["gradient_worst_relative_error"]
        lines.append(
            f"| {source} | {t['architectures']} | {t['located']} | {t['verified_by_trace']} | {t['patched']} | "
            f"{len(t['parallel_first_layers'])} | {len(t['traced_on_cpu'])} | {t['gradient_checked']} | "
            f"{t['gradient_passed']} | {'' if worst is None else f'{worst:.1e}'} |"
        )
    lines += [
        "",
        f"Gradient: relative max error of the patched first layer's gradient against the float64 formula "
        f"(pass: <= {RELATIVE_TOLERANCE:g}); cond: condition number of x^T x / N + lam I at the layer. At cond "
        "~1e5 PyTorch's own float32 weight gradient, solved exactly, is already ~1e-3 from the float64 formula "
        "(tests/engine/test_dtypes.py shows TrAct adds nothing to that); such a FAIL is that limit.",
        "",
        "| source | architecture | first layer(s) | class | found by | verified | patched | gradient |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row.get("error"):
            lines.append(f"| {row['source']} | {row['architecture']} | ERROR: {row['error'][:80]} | | | | | |")
            continue
        classes = ", ".join(sorted({s["class"].rsplit(".", 1)[-1] for s in row["stems"]}))
        gradient = row.get("gradient") or {}
        grad = ""
        if gradient.get("checked") and gradient.get("max_relative_error") is not None:
            grad = f"{gradient['max_relative_error']:.1e}" + ("" if gradient["passed"] else " FAIL")
            grad += f" (cond {gradient['condition']:.0e})" if not gradient["passed"] else ""
        elif gradient:
            grad = "not run"
        lines.append(
            f"| {row['source']} | {row['architecture']} | {', '.join(row['first_layers'])} | {classes} | "
            f"{row['rule']} | {'yes' if row['verified'] else 'NO'} | {'yes' if row['patched'] else 'NO'} | {grad} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", choices=("timm", "torchvision", "all"), default="all")
    parser.add_argument("--names", default="", help="comma-separated architecture names (default: all)")
    parser.add_argument(
        "--gradient",
        choices=("sample", "all", "none"),
        default="sample",
        help="which architectures get the real forward/backward gradient check",
    )
    parser.add_argument(
        "--max-params",
        type=int,
        default=200_000_000,
        help="largest model (parameters) built for real for the gradient check",
    )
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output prefix (.rows.tmp, .json, .md)")
    parser.add_argument("--resume", action="store_true", help="keep the rows already in <out>.rows.tmp")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    started = time.perf_counter()
    rows = sweep(args)
    summary = totals(rows)
    import timm

    environment = {
        "tract_hub": tract_hub.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "python": platform.python_version(),
        "cpu threads": torch.get_num_threads(),
    }
    out = Path(args.out)
    document = {
        "environment": environment,
        "totals": summary,
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    out.with_suffix(".json").write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    out.with_suffix(".md").write_text(_markdown(rows, summary, environment))
    for source, t in summary.items():
        print(
            json.dumps(
                {source: {k: v if not isinstance(v, (list, dict)) or len(v) <= 12 else len(v) for k, v in t.items()}},
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
