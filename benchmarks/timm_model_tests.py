"""timm's own model tests, run on TrAct-patched models.

timm's ``tests/test_models.py`` builds each architecture with ``create_model`` and checks its forward, backward,
features, intermediates, pruning, TorchScript and FX paths. Here every model those tests build is passed to
``tract_hub.patch`` first (``benchmarks/timm_patch_plugin.py``), so the suite checks that a patched model still does
everything the unpatched one does. The tests come from the timm source distribution of the installed version
(downloaded once with pip, or ``--timm-tests DIR``); ``--sample per-module`` (the default) keeps one small
architecture of each of timm's model modules and the ``test_*`` models, ``--sample all`` every architecture.

Writes ``<out>.json`` (every test's outcome, every patch outcome) and ``<out>.md`` (counts per test function and
each failure's first line), and prints the table.

    python benchmarks/timm_model_tests.py                     # per-module sample: about 45 minutes on 2 cores
    python benchmarks/timm_model_tests.py --timm-tests /tmp/timm-1.0.31/tests -- -k test_model_backward
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import timm
import torch
from reporting import write_report

HERE = Path(__file__).resolve().parent
OUTCOMES = {"failure": "failed", "error": "error", "skipped": "skipped"}  # JUnit XML child tag -> outcome
SMALL_NAME_PARTS = ("atto", "pico", "femto", "nano", "tiny", "small", "_s", "xs", "b0", "18", "050", "_t")


def download_timm_tests(into: Path) -> Path:
    """The ``tests`` folder of the installed timm version's source distribution (pip download, then unpack)."""
    version = timm.__version__
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", f"timm=={version}", "-d", into],
        check=True,
    )
    (archive,) = into.glob(f"timm-{version}.tar.gz")
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and f"timm-{version}/tests/" in m.name]
        tar.extractall(into, members=members, filter="data")
    return into / f"timm-{version}" / "tests"


def sampled_models(sample: str) -> list[str]:
    """Every timm architecture, or the smallest-sounding one of each model module plus timm's ``test_*`` models."""
    from timm.models._registry import _model_to_module  # timm's own model -> module table

    names = timm.list_models()
    if sample == "all":
        return names
    by_module: dict[str, list[str]] = defaultdict(list)
    for name in names:
        by_module[_model_to_module.get(name, "")].append(name)

    def size_order(name: str) -> tuple[bool, bool, int, str]:
        small = any(part in name for part in SMALL_NAME_PARTS)
        return (not name.startswith("test_"), not small, len(name), name)

    chosen = {min(group, key=size_order) for group in by_module.values()}
    return sorted(chosen | {name for name in names if name.startswith("test_")})


def run_suite(tests: Path, models: list[str], work: Path, pytest_args: list[str]) -> tuple[Path, Path, float]:
    """Run timm's test_models.py with the plugin; the JUnit XML, the patch record and the seconds it took."""
    selection, record, junit = work / "models.txt", work / "patch.jsonl", work / "junit.xml"
    selection.write_text("\n".join(models) + "\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        "TIMM_PATCH_MODELS": str(selection),
        "TIMM_PATCH_RECORD": str(record),
    }
    command = [sys.executable, "-m", "pytest", "test_models.py", "-p", "timm_patch_plugin", "-p", "no:cacheprovider"]
    command += ["-q", "-W", "ignore", f"--junitxml={junit}", *pytest_args]
    started = time.perf_counter()
    subprocess.run(command, cwd=tests, env=env, check=False)
    return junit, record, time.perf_counter() - started


def read_outcomes(junit: Path) -> list[dict[str, str]]:
    """One ``{"test", "function", "outcome", "message"}`` per test case of a JUnit XML report."""
    outcomes = []
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in OUTCOMES:
                outcome = OUTCOMES[child.tag]
                text = (child.get("message") or child.text or "").strip()
                message = text.splitlines()[0][:300] if text else ""
        name = case.get("name", "")
        outcomes.append({"test": name, "function": name.split("[")[0], "outcome": outcome, "message": message})
    return outcomes


def report_table(outcomes: list[dict[str, str]], patches: list[dict[str, str]], meta: dict[str, Any]) -> str:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for outcome in outcomes:
        counts[outcome["function"]][outcome["outcome"]] += 1
    refused = [p for p in patches if p["patch"] != "patched"]
    lines = [
        "# timm's own model tests on TrAct-patched models",
        "",
        f"Environment: {meta['environment']}. Sample: {meta['sample']} ({meta['models']} architectures); "
        f"{meta['seconds'] / 60:.0f} minutes. Models built: {len(patches)}, patched {len(patches) - len(refused)}, "
        f"refused by tract_hub {len(refused)} (those tests ran the unpatched model).",
        "",
        "| test function | passed | failed | errors | skipped |",
        "|---|---:|---:|---:|---:|",
    ]
    for function, count in sorted(counts.items()):
        lines.append(f"| {function} | {count['passed']} | {count['failed']} | {count['error']} | {count['skipped']} |")
    total = Counter(o["outcome"] for o in outcomes)
    lines.append(f"| **all** | {total['passed']} | {total['failed']} | {total['error']} | {total['skipped']} |")
    failed = [o for o in outcomes if o["outcome"] in ("failed", "error")]
    lines += ["", "## Failures and errors", ""]
    lines += [f"- `{o['test']}`: {o['message']}" for o in failed] or ["none"]
    if refused:
        lines += ["", "## Models tract_hub refused to patch", ""]
        lines += sorted({f"- `{p['model']}`: {p['patch'][:200]}" for p in refused})
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timm-tests", type=Path, help="timm's tests folder (default: download the sdist)")
    parser.add_argument("--sample", choices=["per-module", "all"], default="per-module")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "timm_model_tests")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest (e.g. -k test_model_backward)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="timm-model-tests-") as scratch:
        work = Path(scratch)
        tests = args.timm_tests or download_timm_tests(work)
        models = sampled_models(args.sample)
        junit, record, seconds = run_suite(tests.resolve(), models, work, args.pytest_args)
        outcomes = read_outcomes(junit)
        patches = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    meta = {
        "environment": f"tract_hub, torch {torch.__version__}, timm {timm.__version__}, python "
        f"{platform.python_version()}, cpu threads {torch.get_num_threads()}",
        "sample": args.sample,
        "models": len(models),
        "seconds": seconds,
        "pytest_args": args.pytest_args,
    }
    table = report_table(outcomes, patches, meta)
    write_report(args.out, table, {**meta, "outcomes": outcomes, "patches": patches})


if __name__ == "__main__":
    main()
