"""Exact mode when the first layer gets no gradient on some ranks (``find_unused_parameters=True``, or gradients
averaged by hand with ``process_group=``): no rank pairs the covariance's reduction with an unrelated collective,
and the update is the whole batch's, on 2 and 3 gloo processes."""

from __future__ import annotations

import functools

import pytest

from tests.exact.unused_branch import reference_update, run
from tests.exact.workers import spawn
from tests.reference import relative_error

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

WRAPPERS = ["ddp", "process_group"]


@pytest.fixture(scope="module", params=[2, 3], ids=["2-ranks", "3-ranks"])
def ranks(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, list[dict]]:
    world = request.param
    jobs = {wrapper: functools.partial(run, wrapper=wrapper) for wrapper in WRAPPERS}
    return world, spawn(jobs, world, tmp_path_factory.mktemp(f"unused{world}"))


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_a_rank_without_the_first_layers_gradient_still_gives_the_whole_batch_update(ranks, wrapper: str) -> None:
    world, results = ranks
    expected = reference_update(world)
    for result in results:
        outcome = result[wrapper]
        assert "error" not in outcome, outcome.get("error")
        assert relative_error(outcome["update"], expected) < 1e-10


def test_ddp_averaging_between_backwards_is_not_taken_for_an_edit(ranks) -> None:
    """DDP writes the averaged gradient at the end of each synchronizing backward; what ``.grad`` holds is
    compared after that, so no rank warns that its gradient was changed."""
    _, results = ranks
    for result in results:
        assert not [m for m in result["ddp"]["warnings"] if "changed between two backwards" in m]
