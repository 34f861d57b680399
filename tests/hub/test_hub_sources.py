"""Sources (local directory, hf-hub:org/name[@rev], org/name) and every Hub failure as the project's own error."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest
from hub_helpers import http_error
from huggingface_hub import errors as hf

import tract_hub
from tract_hub.errors import CheckpointIntegrityError, HubError, InvalidArgumentError
from tract_hub.pretrained.fetch import CheckpointSource, parse_source

# (source, revision, expected)
PARSED = [
    ("hf-hub:org/name", None, CheckpointSource("hub", "org/name", None)),
    ("hf-hub:org/name@v1.0", None, CheckpointSource("hub", "org/name", "v1.0")),
    ("hf-hub:org/name", "dev", CheckpointSource("hub", "org/name", "dev")),
    ("org/name", None, CheckpointSource("hub", "org/name", None)),
    ("org/name@refs/pr/1", None, CheckpointSource("hub", "org/name", "refs/pr/1")),
    ("local-dir:/some/dir", None, CheckpointSource("local", "/some/dir", None)),
    (Path("/some/dir"), None, CheckpointSource("local", "/some/dir", None)),
]


@pytest.mark.parametrize(("source", "revision", "expected"), PARSED, ids=[str(p[0]) for p in PARSED])
def test_source_is_parsed(source: object, revision: str | None, expected: CheckpointSource) -> None:
    assert parse_source(source, revision) == expected


def test_existing_directory_named_like_a_repo_is_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "org" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert parse_source("org/name").kind == "local"


# (source, revision, error, message fragment)
REFUSED = [
    ("hf-hub:", None, InvalidArgumentError, "not a valid Hub repository id"),
    ("hf-hub:org/name@", None, InvalidArgumentError, "one revision"),
    ("hf-hub:org/name@v1", "v2", InvalidArgumentError, "pins revision"),
    ("hf-hub:only-name", None, InvalidArgumentError, "org/name"),
    ("hf-hub:org/bad name", None, InvalidArgumentError, "not a valid Hub repository id"),
    ("./missing/checkpoint/dir", None, HubError, "neither an existing directory"),
    ("", None, InvalidArgumentError, "local directory"),
    (42, None, InvalidArgumentError, "local directory"),
]


@pytest.mark.parametrize(("source", "revision", "error", "fragment"), REFUSED, ids=[repr(r[0]) for r in REFUSED])
def test_bad_source_is_refused(source: object, revision: str | None, error: type, fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        parse_source(source, revision)


# (case, exception hf_hub_download raises, error, message fragment)
HUB_FAILURES = [
    ("repo does not exist", http_error(hf.RepositoryNotFoundError, 404), HubError, "does not exist on the Hub"),
    ("gated", http_error(hf.GatedRepoError, 403), HubError, "gated"),
    ("no such revision", http_error(hf.RevisionNotFoundError, 404), HubError, "no revision"),
    ("no token", http_error(hf.HfHubHTTPError, 401), HubError, "hf auth login"),
    ("server error", http_error(hf.HfHubHTTPError, 500), HubError, "HTTP 500"),
    ("file missing", http_error(hf.RemoteEntryNotFoundError, 404), CheckpointIntegrityError, "has no config.json"),
    ("no network", hf.LocalEntryNotFoundError("connection failed"), HubError, "cannot reach the Hub"),
    ("connection refused", ConnectionRefusedError(111, "refused"), HubError, "check the network"),
]


@pytest.mark.parametrize(("case", "raised", "error", "fragment"), HUB_FAILURES, ids=[f[0] for f in HUB_FAILURES])
def test_hub_failure_is_explained(
    case: str, raised: Exception, error: type, fragment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> str:
        raise raised

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fail)
    with pytest.raises(error, match=fragment) as caught:
        tract_hub.from_pretrained("hf-hub:org/name@v1")
    assert "hf-hub:org/name" in str(caught.value)
    assert caught.value.__cause__ is raised


def test_offline_without_cached_copy_says_so(offline_hub: Path) -> None:
    with pytest.raises(HubError, match="HF_HUB_OFFLINE is set"):
        tract_hub.from_pretrained("hf-hub:org/never-downloaded")


def test_token_and_revision_reach_huggingface_hub(monkeypatch: pytest.MonkeyPatch, saved_timm: Path) -> None:
    seen = []

    def download(repo_id: str, filename: str, **kwargs: object) -> str:
        seen.append(SimpleNamespace(repo_id=repo_id, filename=filename, **kwargs))
        return str(saved_timm / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", download)
    tract_hub.from_pretrained("org/name", revision="v2", token="hf_secret", cache_dir="/tmp/cache")
    assert [call.filename for call in seen] == ["config.json", "model.safetensors"]
    assert {(c.repo_id, c.revision, c.token, c.cache_dir) for c in seen} == {
        ("org/name", "v2", "hf_secret", "/tmp/cache")
    }
