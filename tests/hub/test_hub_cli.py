"""``tract-hub push``, ``pull`` and ``card``: thin wrappers, one-line errors with exit status 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_helpers import write_run

from tract_hub.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("runs"), "digits_tract", lam=0.1)


def test_push_dry_run_prints_what_would_be_uploaded(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["push", str(run), "--repo", "org/name", "--dry-run", "--private", "--folder", str(tmp_path / "up")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "would upload 4 file(s)" in out and "org/name (private, revision main)" in out
    assert "model.safetensors" in out and "README.md" in out
    assert (tmp_path / "up" / "config.json").is_file()


def test_pull_copies_a_verified_checkpoint(saved_timm: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["pull", str(saved_timm), "--to", str(tmp_path / "copy")]) == 0
    assert "verified and wrote" in capsys.readouterr().out
    for name in ("config.json", "model.safetensors", "README.md"):
        assert (tmp_path / "copy" / name).read_bytes() == (saved_timm / name).read_bytes()


def test_card_prints_the_card(run: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["card", str(run), "--repo", "org/name"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("---\nlibrary_name: timm\n")
    assert "hf-hub:org/name" in out


def test_card_writes_the_card_and_curves(run: Path, tmp_path: Path) -> None:
    assert main(["card", str(run), "--output", str(tmp_path / "cards" / "README.md")]) == 0
    assert sorted(path.name for path in (tmp_path / "cards").iterdir()) == ["README.md", "training_curves.png"]


# (case, arguments, message fragment)
FAILURES = [
    ("offline pull", ["pull", "hf-hub:org/never-downloaded", "--to", "{tmp}/x"], "HF_HUB_OFFLINE is set"),
    ("not a run", ["card", "{tmp}"], "has no summary.json"),
    ("push without token", ["push", "{tmp}", "--repo", "org/name"], "no Hugging Face token"),
]


@pytest.mark.parametrize(("case", "argv", "fragment"), FAILURES, ids=[f[0] for f in FAILURES])
def test_failures_are_one_line_errors(
    case: str,
    argv: list[str],
    fragment: str,
    offline_hub: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    import huggingface_hub

    monkeypatch.delenv("TRACT_HUB_TRACEBACK", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    assert main([arg.format(tmp=tmp_path) for arg in argv]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"tract-hub {argv[0]}: error: ")
    assert fragment in last
