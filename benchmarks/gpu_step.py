"""One-shot GPU benchmark: full training-step time, peak memory and host-device syncs of TrAct vs vanilla.

For each model (the paper's CIFAR ViT and CIFAR ResNet-18 at batch 128; timm ResNet-50 and ViT-S/16 at 224, batch
128, bf16 autocast, channels_last) and each of eager / ``torch.compile``, the variants vanilla, TrAct per-backward,
TrAct exact (and the paper's ``torch_tract`` when importable) are timed on the same batch: one step is zero_grad,
forward, cross-entropy, backward and an SGD step, timed with CUDA events; warm-up rounds (compilation happens
there), then rounds that run every variant once in a shuffled order; medians. Peak memory is
``torch.cuda.max_memory_allocated`` over one step after a reset; syncs are the warnings of
``torch.cuda.set_sync_debug_mode("warn")`` during one step. Configurations that would start after ``--budget-s``
seconds are skipped and listed as such, so the whole run stays inside a fixed device-time budget.

    python benchmarks/gpu_step.py                        # on a CUDA machine (about 8 minutes at most)
    python benchmarks/gpu_step.py --smoke                # CPU, tiny models, eager: checks the script itself
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from step_models import MODELS, interleaved_medians
from torch import nn

import tract_hub

#: (model key, batch, bf16 autocast, channels_last) as the issue that asked for this benchmark specifies.
FULL = [("cifar-vit", 128, True, False), ("cifar-resnet18", 128, False, False), ("resnet50", 128, True, True),
        ("vit-s16", 128, True, True)]  # fmt: skip
SMOKE = [("tiny-vit", 4, False, False), ("tiny-resnet", 4, False, False)]
TARGETS = {"cifar-vit": 0.02, "resnet50": 0.005, "vit-s16": 0.005}  # step-time overhead TrAct may add
MEMORY_TARGET = 1.05


@dataclass
class Row:
    model: str
    compiled: bool
    variant: str
    median_ms: float
    overhead_vs_vanilla: float
    peak_memory_bytes: int | None
    memory_vs_vanilla: float | None
    syncs_per_step: int | None


def variants(build: Callable[[], nn.Module], first_layer: str) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    base = build()
    found = {"vanilla": base}
    for name, exact in (("per_backward", False), ("exact", True)):
        found[name] = tract_hub.patch(copy.deepcopy(base), 0.1, target=first_layer, exact=exact)
    try:
        import torch_tract  # the paper's reference implementation: a comparison, never a dependency
    except ImportError:
        return found
    reference = copy.deepcopy(base)
    reference.set_submodule(first_layer, torch_tract.TrAct(reference.get_submodule(first_layer), l=0.1))
    found["torch_tract"] = reference
    return found


class Stepper:
    """One training step of one variant, timed on the device (CUDA events) or the host (smoke mode)."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, bf16: bool, compiled: bool) -> None:
        self.model = torch.compile(model) if compiled else model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        self.x, self.y, self.bf16 = x, y, bf16
        self.cuda = x.is_cuda

    def run(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        context = torch.autocast(self.x.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with context:
            loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()

    def timed(self) -> float:
        if not self.cuda:
            start = time.perf_counter()
            self.run()
            return time.perf_counter() - start
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        self.run()
        end.record()
        end.synchronize()
        return begin.elapsed_time(end) / 1e3

    def peak_memory(self) -> int | None:
        if not self.cuda:
            return None
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        self.run()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()

    def syncs(self) -> int | None:
        if not self.cuda:
            return None
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                self.run()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)


def measure(
    key: str, batch: int, bf16: bool, channels_last: bool, compiled: bool, device: str, rounds: int
) -> list[Row]:
    spec = MODELS[key]
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, spec.image_size, spec.image_size, generator=generator)
    x = x.to(device).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (batch,), generator=generator).to(device)
    steppers = {
        name: Stepper(model.to(device, memory_format=memory_format), x, y, bf16, compiled)
        for name, model in variants(spec.build, spec.first_layer).items()
    }
    medians = interleaved_medians({name: s.timed for name, s in steppers.items()}, rounds, warmup=3)
    memory = {name: s.peak_memory() for name, s in steppers.items()}
    syncs = {name: s.syncs() for name, s in steppers.items()}
    rows = []
    for name in steppers:
        base_memory = memory["vanilla"]
        rows.append(
            Row(
                model=key,
                compiled=compiled,
                variant=name,
                median_ms=medians[name] * 1e3,
                overhead_vs_vanilla=medians[name] / medians["vanilla"] - 1,
                peak_memory_bytes=memory[name],
                memory_vs_vanilla=memory[name] / base_memory if memory[name] and base_memory else None,
                syncs_per_step=syncs[name],
            )
        )
    return rows


def markdown(rows: list[Row]) -> str:
    lines = [
        "| model | compile | variant | step ms | overhead | peak memory (x vanilla) | syncs per step |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        memory = f"{r.peak_memory_bytes / 2**20:.0f} MiB ({r.memory_vs_vanilla:.3f})" if r.peak_memory_bytes else "-"
        syncs = "-" if r.syncs_per_step is None else str(r.syncs_per_step)
        lines.append(
            f"| {MODELS[r.model].name} | {'yes' if r.compiled else 'no'} | {r.variant} | {r.median_ms:.2f} | "
            f"{r.overhead_vs_vanilla * 100:+.2f}% | {memory} | {syncs} |"
        )
    return "\n".join(lines)


def target_checks(rows: list[Row]) -> list[str]:
    checks = []
    for r in rows:
        if r.variant not in ("per_backward", "exact") or r.model not in TARGETS:
            continue
        ok = r.overhead_vs_vanilla <= TARGETS[r.model]
        memory_ok = r.memory_vs_vanilla is None or r.memory_vs_vanilla <= MEMORY_TARGET
        checks.append(
            f"{'PASS' if ok and memory_ok else 'MISS'} {r.model} {'compiled' if r.compiled else 'eager'} {r.variant}: "
            f"overhead {r.overhead_vs_vanilla * 100:+.2f}% (target <= {TARGETS[r.model] * 100:.1f}%), memory "
            f"{'-' if r.memory_vs_vanilla is None else f'{r.memory_vs_vanilla:.3f}x'} (target <= {MEMORY_TARGET}x)"
        )
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny models, eager only: checks the script")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 10; smoke 2)")
    parser.add_argument("--no-compile", action="store_true", help="eager only")
    parser.add_argument("--budget-s", type=float, default=420.0, help="start no configuration after this many s")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "gpu_step.json")
    args = parser.parse_args()
    if not args.smoke and not torch.cuda.is_available():
        parser.error("no CUDA device: run on a GPU machine, or use --smoke to check the script on a CPU")
    device = "cpu" if args.smoke else "cuda"
    rounds = args.rounds or (2 if args.smoke else 10)
    compile_modes = [False] if (args.smoke or args.no_compile) else [False, True]
    if not args.smoke:
        torch.backends.cudnn.benchmark = True
    started, rows, skipped = time.monotonic(), [], []
    for compiled in compile_modes:
        for key, batch, bf16, channels_last in SMOKE if args.smoke else FULL:
            if time.monotonic() - started > args.budget_s:
                skipped.append({"model": key, "compiled": compiled, "reason": f"time budget {args.budget_s:.0f} s"})
                continue
            rows += measure(key, batch, bf16, channels_last, compiled, device, rounds)
            print(markdown([r for r in rows if r.model == key and r.compiled == compiled]), flush=True)
    print("\n" + markdown(rows))
    checks = target_checks(rows)
    print("\n".join(checks))
    for skip in skipped:
        print(f"skipped {skip['model']} ({'compiled' if skip['compiled'] else 'eager'}): {skip['reason']}")
    record = {
        "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "smoke": args.smoke,
        "rounds": rounds,
        "seconds": time.monotonic() - started,
        "rows": [asdict(r) for r in rows],
        "skipped": skipped,
        "target_checks": checks,
    }
    assert all(math.isfinite(r.median_ms) for r in rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2, sort_keys=True))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
