"""``push_to_hub``: save a model or a run directory in Hub format and upload the folder in one commit.

Uses ``huggingface_hub.HfApi``: ``create_repo(exist_ok=True)``, ``create_branch`` for a new ``revision``,
``file_exists`` for the repository's README.md, then one ``upload_folder`` (a single commit). A README.md already
on the Hub is never overwritten (as timm writes a card only when there is none): the new card is left out of the
commit. The token comes from ``token=``, ``HF_TOKEN`` or ``hf auth login``. ``dry_run=True`` writes the folder
and reports what would be uploaded, without a token or the network.

Example:
    >>> import tempfile, tract_hub
    >>> from tract_hub.models import create_model
    >>> result = tract_hub.push_to_hub(create_model("timm:test_resnet"), "org/name", dry_run=True,
    ...                                folder=tempfile.mkdtemp() + "/upload")
    >>> [name for name, _ in result.files]
    ['README.md', 'config.json', 'model.safetensors']
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from .._version import __version__
from ..artifacts.checkpoint_files import CARD_NAME, CONFIG_NAME
from ..artifacts.run_dir import RunDirectory
from ..errors import HubError, InvalidArgumentError
from ..pretrained.fetch import hub_request_errors
from .export import save_run
from .pull import pull
from .save import save_pretrained

logger = logging.getLogger(__name__)

_LOGIN_HINT = "run `hf auth login`, set HF_TOKEN, or pass token= (--token)"


@dataclass(frozen=True)
class PushResult:
    """What was (or, for a dry run, would be) uploaded: one commit of ``files`` to ``repo_id``."""

    repo_id: str
    folder: Path
    files: tuple[tuple[str, int], ...]
    commit_message: str
    revision: str | None
    private: bool
    dry_run: bool
    commit_url: str | None = None
    kept_card: bool = False  # the repository already had a README.md, which was left as it is

    def describe(self) -> str:
        """Several lines for the command line: the repository, the commit and each file with its size."""
        count = f"{len(self.files)} file(s)"
        verb = f"would upload {count} from {self.folder}" if self.dry_run else f"uploaded {count}"
        branch = self.revision or "main"
        lines = [
            f"{verb} to {self.repo_id} ({'private' if self.private else 'public'}, revision {branch}) in one "
            f"commit: {self.commit_message!r}"
        ]
        lines += [f"  {name}  {size:,} bytes" for name, size in self.files]
        if self.dry_run and any(name == CARD_NAME for name, _ in self.files):
            lines.append(f"{CARD_NAME} is uploaded only if the repository has none (an existing card is kept)")
        if self.kept_card:
            lines.append(f"kept the repository's own {CARD_NAME}; the new card was not uploaded")
        if self.commit_url:
            lines.append(f"commit: {self.commit_url}")
        return "\n".join(lines)


def _checked_repo_id(repo_id: str) -> str:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise InvalidArgumentError(f"repo_id={repo_id!r}: write the Hub repository as org/name")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise InvalidArgumentError(f"repo_id={repo_id!r} is not a valid Hub repository id ({error})") from error
    return repo_id


def _listing(folder: Path) -> tuple[tuple[str, int], ...]:
    files = (path for path in folder.rglob("*") if path.is_file())
    return tuple(sorted((path.relative_to(folder).as_posix(), path.stat().st_size) for path in files))


def _write_folder(model_or_run_dir: Any, folder: Path, repo_id: str, baseline: Any, save_kwargs: dict) -> str:
    """Write the upload folder; returns a default commit message."""
    if isinstance(model_or_run_dir, nn.Module):
        if baseline is not None:
            raise InvalidArgumentError("baseline= compares two run directories; push a run directory to use it")
        save_pretrained(model_or_run_dir, folder, repo_id=repo_id, **save_kwargs)
        return f"Upload {type(model_or_run_dir).__name__} checkpoint with tract_hub {__version__}"
    if isinstance(model_or_run_dir, str | os.PathLike):
        if save_kwargs:
            raise InvalidArgumentError(
                f"{sorted(save_kwargs)} apply to a model; a run directory's checkpoint is described by its summary"
            )
        directory = Path(model_or_run_dir)
        if (directory / CONFIG_NAME).is_file() and not RunDirectory(directory).summary_path.is_file():
            if baseline is not None:
                raise InvalidArgumentError(
                    "baseline= compares two run directories; a checkpoint directory has its card"
                )
            pull(directory, folder)  # a checkpoint directory: verified (it loads strictly), then uploaded as it is
            return f"Upload checkpoint {directory.name} with tract_hub {__version__}"
        save_run(directory, folder, baseline=baseline, repo_id=repo_id)
        return f"Upload TrAct run {directory.name} with tract_hub {__version__}"
    raise InvalidArgumentError(
        f"push_to_hub needs an nn.Module or a run directory, got {type(model_or_run_dir).__name__}"
    )


def _api(api: Any, token: str | None) -> Any:
    if api is not None:
        return api
    import huggingface_hub

    token = token or huggingface_hub.get_token()
    if not token:
        raise HubError(f"no Hugging Face token found to push with; {_LOGIN_HINT}")
    return huggingface_hub.HfApi(token=token, library_name="tract_hub", library_version=__version__)


def _upload(
    api: Any, repo_id: str, folder: Path, *, private: bool, revision: str | None, message: str
) -> tuple[Any, bool]:
    """Create the repository (and branch) if needed and upload ``folder`` in one commit, leaving out our card
    when the repository has one; returns (the commit, whether the card was left out)."""
    repo = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    repo_id = getattr(repo, "repo_id", None) or repo_id
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
    keep_card = api.file_exists(repo_id, CARD_NAME, repo_type="model", revision=revision)
    if keep_card:
        logger.info("%s already has a %s; it is kept (the new card is not uploaded)", repo_id, CARD_NAME)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        revision=revision,
        commit_message=message,
        repo_type="model",
        ignore_patterns=[CARD_NAME] if keep_card else None,
    )
    return commit, keep_card


def _commit(api: Any, planned: PushResult) -> PushResult:
    """Upload ``planned``; what was uploaded, and the commit's URL."""
    try:
        commit, kept_card = _upload(
            api, planned.repo_id, planned.folder, private=planned.private, revision=planned.revision,
            message=planned.commit_message,
        )  # fmt: skip
    except hub_request_errors() as error:
        raise _push_error(error, planned.repo_id) from error
    commit_url = getattr(commit, "commit_url", None) or (str(commit) if commit is not None else None)
    files = tuple(entry for entry in planned.files if not (kept_card and entry[0] == CARD_NAME))
    result = dataclasses.replace(planned, files=files, dry_run=False, commit_url=commit_url, kept_card=kept_card)
    logger.info("pushed %d file(s) to %s: %s", len(files), planned.repo_id, commit_url)
    return result


def _push_error(error: Exception, repo_id: str) -> HubError:
    from huggingface_hub import errors as hf

    status = getattr(getattr(error, "response", None), "status_code", None)
    if status in (401, 403) or isinstance(error, hf.LocalTokenNotFoundError):
        return HubError(f"the Hub refused to write to {repo_id} (HTTP {status}); {_LOGIN_HINT} with a write token")
    if isinstance(error, hf.RepositoryNotFoundError):
        return HubError(f"{repo_id}: the repository cannot be created or found; check the org name and your rights")
    if isinstance(error, hf.HfHubHTTPError):
        return HubError(f"pushing to {repo_id} failed (HTTP {status}): {error}")
    return HubError(f"pushing to {repo_id} failed ({type(error).__name__}: {error}); check the network")


def push_to_hub(
    model_or_run_dir: nn.Module | str | os.PathLike[str],
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    dry_run: bool = False,
    api: Any = None,
    baseline: str | os.PathLike[str] | None = None,
    folder: str | os.PathLike[str] | None = None,
    **save_kwargs: Any,
) -> PushResult:
    """Save a model (or a run directory's best checkpoint with its card) and upload it to ``repo_id`` in one commit.

    Args:
        model_or_run_dir: an ``nn.Module`` (saved with :func:`save_pretrained`), a run directory written by the
            trainer (saved with :func:`tract_hub.hub.save_run`, card and curves included), or a checkpoint
            directory written by :func:`save_pretrained` (verified, then uploaded as it is).
        repo_id: ``org/name``; the repository is created if needed.
        private: create the repository private (an existing repository keeps its visibility).
        revision: the branch to commit to (created from main if missing); default main.
        commit_message: default names the model or run and the tract_hub version.
        token: default ``HF_TOKEN`` or the token saved by ``hf auth login``.
        dry_run: write the folder and return what would be uploaded; no token, no network.
        api: an ``HfApi``-like object to use instead of a new ``HfApi`` (for tests and custom endpoints).
        baseline: a vanilla run directory to compare with in the card (run directories only).
        folder: where to write the upload folder (kept); default a temporary directory, removed after a real
            upload and kept after a dry run.
        **save_kwargs: for a model, :func:`save_pretrained`'s ``architecture``, ``model_kwargs``, ``metadata``.

    Example:
        >>> import tract_hub
        >>> tract_hub.push_to_hub("runs/digits_tract", "me/resnet8-digits-tract", dry_run=True)  # doctest: +SKIP
    """
    repo_id = _checked_repo_id(repo_id)
    client = None if dry_run else _api(api, token)
    temporary = folder is None
    target = Path(tempfile.mkdtemp(prefix="tract-hub-push-")) / repo_id.split("/")[1] if temporary else Path(folder)
    try:
        default_message = _write_folder(model_or_run_dir, target, repo_id, baseline, save_kwargs)
        message = commit_message or default_message
        planned = PushResult(repo_id, target, _listing(target), message, revision, private, dry_run)
        if dry_run:
            logger.debug("%s", planned.describe())
            return planned
        return _commit(client, planned)
    finally:
        if temporary and not dry_run:
            shutil.rmtree(target.parent, ignore_errors=True)
