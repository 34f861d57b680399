"""A model card renders every value as inert text: no HTML, no link but to huggingface.co, no fence that closes.

The card is rendered to HTML with a CommonMark + GFM renderer (markdown-it-py: raw HTML on, bare URLs linked,
and every link accepted, as the most permissive renderer would) and the HTML is then read tag by tag: only the
tags Markdown itself produces may appear, links go only to the Hub (and the card's fixed references), and the
only image is the training curves.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from hub_helpers import write_run

import tract_hub
from tract_hub.artifacts import TrActMetadata
from tract_hub.errors import CheckpointIntegrityError, InvalidArgumentError
from tract_hub.hub import parse_front_matter, render_card, write_run_card
from tract_hub.hub.card import CardInfo
from tract_hub.hub.markdown import code, fenced, is_repo_id, text
from tract_hub.models import create_model
from tract_hub.pretrained.spec import ArchitectureSpec

markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py is a dev dependency (pip install -e .[dev])")

_MARKDOWN_TAGS = {
    "a", "blockquote", "br", "code", "em", "h1", "h2", "h3", "hr", "img", "li", "ol", "p", "pre", "strong",
    "table", "tbody", "td", "th", "thead", "tr", "ul", "s",
}  # fmt: skip
_FIXED_LINKS = ("https://github.com/huggingface/pytorch-image-models", "https://arxiv.org/abs/2410.23970")


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_inert(card: str) -> None:
    """The whole card, its front matter included (a renderer that does not know front matter shows it as text),
    rendered permissively, holds only Markdown's own tags, Hub links and the curves image."""
    body = card
    renderer = markdown_it.MarkdownIt("gfm-like", {"html": True, "linkify": True})
    renderer.validateLink = lambda url: True  # a renderer that does not filter javascript: links
    parser = _Tags()
    parser.feed(renderer.render(body))
    for tag, attrs in parser.tags:
        assert tag in _MARKDOWN_TAGS, f"the card renders a <{tag}> element: {attrs}"
        assert not any(name.startswith("on") for name in attrs), f"<{tag}> carries an event handler: {attrs}"
        if tag == "a":
            href = attrs.get("href") or ""
            assert href.startswith("https://huggingface.co/") or href in _FIXED_LINKS, f"a link to {href!r}"
        if tag == "img":
            assert attrs.get("src") == "training_curves.png", f"an image from {attrs.get('src')!r}"


HOSTILE_RECIPE = {
    "name": "x",
    # YAML folds this long value: its continuation line is spaces then three backticks, which would close a
    # three-backtick fence; the HTML after it would then be live
    "description": "word " * 15 + "``` <script>alert(1)</script> " + "word " * 15,
    "model": {"init": "hf-hub:org/base"},
}

# (case, metadata, what the card must show, as inert text)
CASES = [
    ("data set html", {"dataset": "<img src=x onerror=alert(1)>"}, "`<img src=x onerror=alert(1)>`"),
    (
        "layer with backticks and script",
        {"lam": 0.1, "first_layers": ["conv`1<script>alert(1)</script>"]},
        "``conv`1<script>alert(1)</script>``",
    ),
    ("base model link", {"base_model": ") [click](javascript:alert(1))"}, "`) [click](javascript:alert(1))`"),
    ("base model url", {"base_model": "https://evil.example/x"}, "`https://evil.example/x`"),
    ("recipe closes the fence", {"recipe": HOSTILE_RECIPE, "recipe_name": "r"}, "````yaml"),
    ("recipe name", {"recipe": {"a": 1}, "recipe_name": "<b onmouseover=x>r</b>"}, "`<b onmouseover=x>r</b>`"),
    ("metric key", {"metrics": {"top1|<i>": 0.5, "top1": 0.4}, "dataset": "cifar10"}, "| Final `top1\\|<i>` |"),
    ("license", {"license": "cc-by-nc-sa-4.0"}, "## Model details"),
]


@pytest.mark.parametrize(("case", "metadata", "shown"), CASES, ids=[case[0] for case in CASES])
def test_hostile_metadata_renders_inert(case: str, metadata: dict, shown: str) -> None:
    info = CardInfo(name="demo", spec=ArchitectureSpec("timm", "resnet18"), metadata=TrActMetadata(**metadata))
    card = render_card(info)
    assert shown in card
    assert_inert(card)
    front = parse_front_matter(card)  # the front matter still ends where it should, and names only valid ids
    assert front["library_name"] == "timm" and front.get("base_model") in (None, "org/base")
    assert all(is_repo_id(dataset, org=False) for dataset in front.get("datasets", []))


@pytest.mark.parametrize(
    "license",
    ["<script>alert(1)</script>", "mit\n---\n<script>alert(1)</script>", "MIT", "mit license", "", "a" * 65],
)
def test_a_license_that_is_not_a_hub_identifier_is_refused(license: str, tmp_path: Path) -> None:
    """The license reaches the front matter, which a plain CommonMark renderer shows as text: only an identifier
    may go there, from an argument or from a config.json."""
    with pytest.raises(InvalidArgumentError, match=r"license=.* is not a license identifier of the Hub"):
        TrActMetadata(license=license)
    with pytest.raises(InvalidArgumentError, match=r"is not a license identifier"):
        tract_hub.save_pretrained(create_model("timm:test_resnet"), tmp_path / "c", metadata={"license": license})
    assert not any(tmp_path.iterdir())
    with pytest.raises(CheckpointIntegrityError, match=r"\"tract_hub\" block: license="):
        TrActMetadata.from_json({"format_version": 1, "license": license})


def test_a_valid_base_model_is_linked_to_the_hub() -> None:
    info = CardInfo(name="d", spec=ArchitectureSpec("timm", "resnet18"), metadata=TrActMetadata(base_model="org/m"))
    card = render_card(info)
    assert "[org/m](https://huggingface.co/org/m)" in card and parse_front_matter(card)["base_model"] == "org/m"
    assert_inert(card)


def test_hostile_saved_checkpoint_and_run_cards_are_inert(tmp_path: Path) -> None:
    """The two writers of cards: save_pretrained (from config.json) and a run directory's card."""
    model = create_model("timm:test_resnet", num_classes=3)
    metadata = {"dataset": "<img src=x onerror=alert(1)>", "recipe": HOSTILE_RECIPE, "base_model": "<a>"}
    saved = tract_hub.save_pretrained(model, tmp_path / "<h1>name</h1>", metadata=metadata)
    assert_inert((saved / "README.md").read_text())
    run = write_run(tmp_path, "run", lam=0.1, recipe=HOSTILE_RECIPE, dataset="<script>x</script>")
    assert_inert(write_run_card(run, tmp_path / "card" / "README.md").read_text())


def test_the_escapes_keep_the_value_readable() -> None:
    assert text("a*b_c [d](e) <f> & `g` # h") == r"a\*b\_c \[d\]\(e\) &lt;f&gt; &amp; \`g\` \# h"
    assert text("org/name-1.0, https://x") == r"org/name\-1.0, https\://x"
    assert text("line\nbreak\u2028here") == "line break here"
    assert code("``x``") == "``` ``x`` ```" and code("a|b", table=True) == r"`a\|b`"
    assert fenced("x\n````\ny", "yaml").startswith("`````yaml\n") and fenced("x").startswith("```\n")
    renderer = markdown_it.MarkdownIt("gfm-like")
    assert renderer.render(text("<i>*x*</i>")).strip() == "<p>&lt;i&gt;*x*&lt;/i&gt;</p>"
    assert renderer.render(code("a `` b")).strip() == "<p><code>a `` b</code></p>"
