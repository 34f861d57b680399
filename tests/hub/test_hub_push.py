"""push_to_hub against a recording HfApi: one commit, the right files, a card with valid front matter."""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub
import pytest
import torch
from hub_helpers import RecordingApi, http_error, write_run
from huggingface_hub import errors as hf

import tract_hub
from tract_hub.errors import HubError, InvalidArgumentError
from tract_hub.hub import parse_front_matter
from tract_hub.models import create_model

RUN_FILES = ["README.md", "config.json", "model.safetensors", "training_curves.png"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    tract = write_run(root, "digits_tract", lam=0.1, top1=(0.50, 0.70, 0.80), seed=1)
    vanilla = write_run(root, "digits_vanilla", lam=None, top1=(0.40, 0.60, 0.70), seed=2)
    return tract, vanilla


def test_run_directory_is_uploaded_in_one_commit(runs: tuple[Path, Path], tmp_path: Path) -> None:
    api = RecordingApi()
    result = tract_hub.push_to_hub(runs[0], "org/digits-tract", api=api, baseline=runs[1], private=True)
    assert api.names() == ["create_repo", "file_exists", "upload_folder"]
    create, exists, upload = (kwargs for _, kwargs in api.calls)
    assert create == {"repo_id": "org/digits-tract", "private": True, "exist_ok": True, "repo_type": "model"}
    assert exists == {"repo_id": "org/digits-tract", "filename": "README.md", "repo_type": "model", "revision": None}
    assert upload["repo_id"] == "org/digits-tract" and upload["revision"] is None
    assert "digits_tract" in upload["commit_message"]
    assert sorted(api.uploaded) == RUN_FILES
    assert [name for name, _ in result.files] == RUN_FILES
    assert result.commit_url.endswith("/commit/0123456789abcdef0123456789abcdef01234567")
    assert not result.folder.exists()  # the temporary upload folder is removed after a real push

    front = parse_front_matter(api.uploaded["README.md"].decode())
    assert front["library_name"] == "timm"
    assert {"tract", "image-classification"} <= set(front["tags"])
    assert front["datasets"] == ["digits"]
    assert front["model-index"][0]["name"] == "org/digits-tract"
    assert front["model-index"][0]["results"][0]["metrics"][0] == {
        "type": "accuracy",
        "name": "Top-1 accuracy",
        "value": 0.8,
    }
    config = json.loads(api.uploaded["config.json"])
    assert config["tract_hub"]["lam"] == 0.1 and config["tract_hub"]["dataset"] == "digits"
    assert config["tract_hub"]["baseline"]["final"]["top1"] == 0.7


def test_uploaded_folder_loads_back(runs: tuple[Path, Path], tmp_path: Path) -> None:
    api = RecordingApi()
    tract_hub.push_to_hub(runs[0], "org/digits-tract", api=api)
    for name, data in api.uploaded.items():
        (tmp_path / name).write_bytes(data)
    model = tract_hub.from_pretrained(tmp_path).eval()
    reference = create_model("timm:test_resnet", num_classes=10).eval()
    from safetensors.torch import load_file

    reference.load_state_dict(load_file(runs[0] / "checkpoints" / "best" / "model.safetensors"))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_model_push_with_revision_and_message(tmp_path: Path) -> None:
    api = RecordingApi()
    model = tract_hub.patch(create_model("timm:test_resnet", num_classes=3), lam=0.1, target="conv1.0")
    tract_hub.push_to_hub(
        model, "org/name", api=api, revision="v1", commit_message="first", metadata={"metrics": {"top1": 1.0}}
    )
    assert api.names() == ["create_repo", "create_branch", "file_exists", "upload_folder"]
    assert api.calls[1][1] == {"repo_id": "org/name", "branch": "v1", "exist_ok": True, "repo_type": "model"}
    assert api.calls[2][1]["revision"] == "v1"  # the card is looked for on the branch the commit goes to
    assert api.calls[3][1]["revision"] == "v1" and api.calls[3][1]["commit_message"] == "first"
    assert sorted(api.uploaded) == ["README.md", "config.json", "model.safetensors"]
    assert json.loads(api.uploaded["config.json"])["tract_hub"]["first_layers"] == ["conv1.0"]


def test_checkpoint_directory_is_uploaded_as_it_is(saved_timm: Path) -> None:
    api = RecordingApi()
    tract_hub.push_to_hub(saved_timm, "org/name", api=api)
    assert api.names() == ["create_repo", "file_exists", "upload_folder"]
    assert api.uploaded == {path.name: path.read_bytes() for path in saved_timm.iterdir()}


def test_a_card_already_on_the_hub_is_kept(runs: tuple[Path, Path]) -> None:
    api = RecordingApi(existing=("README.md",))
    result = tract_hub.push_to_hub(runs[0], "org/digits-tract", api=api)
    assert api.calls[-1][1]["ignore_patterns"] == ["README.md"]
    assert sorted(api.uploaded) == [name for name in RUN_FILES if name != "README.md"]
    assert [name for name, _ in result.files] == sorted(api.uploaded)
    assert result.kept_card and "kept the repository's own README.md" in result.describe()


def test_dry_run_writes_the_folder_and_uploads_nothing(runs: tuple[Path, Path], tmp_path: Path) -> None:
    class NoCalls:
        def __getattr__(self, name: str) -> None:
            raise AssertionError(f"dry run called HfApi.{name}")

    result = tract_hub.push_to_hub(runs[0], "org/name", api=NoCalls(), dry_run=True, folder=tmp_path / "upload")
    assert result.dry_run and result.commit_url is None
    assert sorted(path.name for path in (tmp_path / "upload").iterdir()) == RUN_FILES
    assert "would upload 4 file(s)" in result.describe()


def test_no_token_is_explained(runs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(HubError, match="no Hugging Face token"):
        tract_hub.push_to_hub(runs[0], "org/name")


# (case, exception the upload raises, message fragment)
UPLOAD_FAILURES = [
    ("read-only token", http_error(hf.HfHubHTTPError, 403), "write token"),
    ("server error", http_error(hf.HfHubHTTPError, 500), "HTTP 500"),
    ("no network", ConnectionError("unreachable"), "check the network"),
]


@pytest.mark.parametrize(("case", "raised", "fragment"), UPLOAD_FAILURES, ids=[u[0] for u in UPLOAD_FAILURES])
def test_upload_failure_is_explained(case: str, raised: Exception, fragment: str) -> None:
    model = create_model("timm:test_resnet", num_classes=3)
    with pytest.raises(HubError, match=fragment):
        tract_hub.push_to_hub(model, "org/name", api=RecordingApi(fail_upload=raised))


def test_wrapped_models_are_not_published(tmp_path: Path) -> None:
    run = write_run(
        tmp_path,
        "detector",
        lam=0.1,
        summary_changes={
            "model": {"architecture": "timm:test_resnet", "kwargs": {"num_classes": 10}, "detector": "fasterrcnn"}
        },
    )
    with pytest.raises(InvalidArgumentError, match="only plain timm architectures"):
        tract_hub.push_to_hub(run, "org/name", dry_run=True, folder=tmp_path / "up")
    assert not (tmp_path / "up").exists()


# (case, arguments, message fragment)
BAD_PUSHES = [
    ("repo without org", {"repo_id": "name"}, "org/name"),
    ("not a model or run", {"model_or_run_dir": 3}, "nn.Module or a run directory"),
    ("baseline for a model", {"model_or_run_dir": torch.nn.Linear(2, 2), "baseline": "x"}, "run directories"),
]


@pytest.mark.parametrize(("case", "arguments", "fragment"), BAD_PUSHES, ids=[b[0] for b in BAD_PUSHES])
def test_bad_push_arguments_are_refused(runs: tuple[Path, Path], case: str, arguments: dict, fragment: str) -> None:
    arguments = {"model_or_run_dir": runs[0], "repo_id": "org/name", **arguments}
    with pytest.raises(InvalidArgumentError, match=fragment):
        tract_hub.push_to_hub(api=RecordingApi(), **arguments)
