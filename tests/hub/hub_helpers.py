"""Helpers of the hub tests: a Hugging Face cache tree, fake run directories, a recording HfApi, HTTP errors."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import yaml
from safetensors.torch import save_file

from tract_hub.models import create_model

COMMIT = "0123456789abcdef0123456789abcdef01234567"
#: Files stored in Git LFS on the Hub (their blob is named by sha256), the others by their git blob sha1.
_LFS_SUFFIXES = (".safetensors", ".png")


def _blob_name(name: str, data: bytes) -> str:
    if name.endswith(_LFS_SUFFIXES):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def build_hf_cache(cache: Path, repo_id: str, checkpoint: Path, commit: str = COMMIT) -> Path:
    """Put ``checkpoint``'s files into ``cache`` with the layout huggingface_hub reads; returns the snapshot dir.

    ``models--org--name/refs/main`` holds the commit, ``snapshots/<commit>/<file>`` are relative symlinks into
    ``blobs/<etag>``.
    """
    root = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = root / "snapshots" / commit
    for directory in (root / "refs", root / "blobs", snapshot):
        directory.mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(commit)
    for path in sorted(checkpoint.iterdir()):
        data = path.read_bytes()
        blob = _blob_name(path.name, data)
        (root / "blobs" / blob).write_bytes(data)
        os.symlink(os.path.join("..", "..", "blobs", blob), snapshot / path.name)
    return snapshot


def write_run(
    root: Path,
    name: str,
    *,
    lam: float | None,
    architecture: str = "timm:test_resnet",
    kwargs: dict[str, Any] | None = None,
    dataset: str = "digits",
    top1: tuple[float, ...] = (0.40, 0.60, 0.70),  # fractions, as the trainer records them
    recipe: dict[str, Any] | None = None,
    seed: int = 0,
    summary_changes: dict[str, Any] | None = None,
) -> Path:
    """A minimal run directory following the trainer/hub contract, with real weights of ``architecture``."""
    kwargs = {"num_classes": 10} if kwargs is None else kwargs
    run = root / name
    torch.manual_seed(seed)
    model = create_model(architecture, **kwargs)
    for which in ("best", "last"):
        (run / "checkpoints" / which).mkdir(parents=True)
        save_file(
            {k: v.contiguous() for k, v in model.state_dict().items()},
            run / "checkpoints" / which / "model.safetensors",
        )
    history = [
        {
            "epoch": epoch,
            "train_loss": 2.0 / epoch,
            "val_loss": 2.2 / epoch,
            "top1": value,
            "top5": min(1.0, round(value + 0.2, 6)),
            "lr": 0.1,
            "epoch_time_s": 1.0,
            "images_per_s": 100.0,
            "tract": {"lam": lam, "exact": False},
        }
        for epoch, value in enumerate(top1, start=1)
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in history))
    best = max(history, key=lambda row: row["top1"])
    recipe = recipe or {"name": "digits_demo", "epochs": len(top1), "lam": lam, "model": {"name": architecture}}
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=True))
    (run / "environment.json").write_text(json.dumps({"torch": torch.__version__, "world_size": 1}))
    summary = {
        "format_version": 1,
        "name": name,
        "model": {"architecture": architecture, "kwargs": kwargs},
        "dataset": dataset,
        "num_classes": kwargs.get("num_classes", 10),
        "lam": lam,
        "exact": False,
        "first_layers": ["conv1.0"] if lam is not None else [],
        "epochs": len(top1),
        "final": {key: history[-1][key] for key in ("top1", "top5", "val_loss")},
        "best": {"epoch": best["epoch"], **{key: best[key] for key in ("top1", "top5", "val_loss")}},
        "recipe_name": recipe.get("name", "digits_demo"),
        **(summary_changes or {}),
    }
    (run / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    return run


class RecordingApi:
    """Stands in for ``huggingface_hub.HfApi``: records every call and the uploaded folder's files.

    ``existing`` names the files the repository already has (``file_exists`` answers from it).
    """

    def __init__(self, fail_upload: Exception | None = None, existing: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.uploaded: dict[str, bytes] = {}
        self.fail_upload = fail_upload
        self.existing = set(existing)

    def create_repo(self, repo_id: str, **kwargs: Any) -> SimpleNamespace:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return SimpleNamespace(repo_id=repo_id)

    def create_branch(self, repo_id: str, **kwargs: Any) -> None:
        self.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

    def file_exists(self, repo_id: str, filename: str, **kwargs: Any) -> bool:
        self.calls.append(("file_exists", {"repo_id": repo_id, "filename": filename, **kwargs}))
        return filename in self.existing

    def upload_folder(self, **kwargs: Any) -> SimpleNamespace:
        self.calls.append(("upload_folder", kwargs))
        if self.fail_upload is not None:
            raise self.fail_upload
        folder, ignored = Path(kwargs["folder_path"]), set(kwargs.get("ignore_patterns") or ())
        files = (p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).as_posix() not in ignored)
        self.uploaded = {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}
        return SimpleNamespace(commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/{COMMIT}")

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def http_error(cls: type[Exception], status: int, message: str = "refused") -> Exception:
    """A huggingface_hub HTTP error with a minimal response (status code, no headers)."""
    return cls(message, response=SimpleNamespace(status_code=status, headers={}, request=None))
