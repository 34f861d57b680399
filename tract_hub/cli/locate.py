"""``tract-hub locate NAME`` and ``tract-hub rules``: where TrAct goes in a model, and the rules that say so.

Example:
    $ tract-hub locate timm:resnet50 --verify
    $ tract-hub locate torchvision:fasterrcnn_resnet50_fpn
    $ tract-hub rules
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from ..artifacts.reading import MAX_DEPTH, json_depth
from ..errors import FirstLayerNotFoundError, InvalidArgumentError

logger = logging.getLogger(__name__)

NAME_HELP = (
    "the architecture: timm:<name> (any of timm.list_models()), torchvision:<builder> (any of "
    "torchvision.models.list_models()), or a bare name (looked up in timm first)"
)


def register(subparsers: Any) -> None:
    locate = subparsers.add_parser(
        "locate",
        help="print the first layer(s) TrAct patches in an architecture",
        description="Build an architecture (on the meta device where it can be: no weights, no memory) and print "
        "its first layer(s), their class, and the rule that found them.",
    )
    locate.add_argument("name", metavar="NAME", help=NAME_HELP)
    locate.add_argument(
        "-k",
        "--kwarg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="constructor keyword argument (VALUE is read as JSON when it parses, e.g. -k in_chans=1); repeatable",
    )
    locate.add_argument("--verify", action="store_true", help="also trace one forward pass and report disagreements")
    locate.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    locate.set_defaults(handler=run_locate)

    rules = subparsers.add_parser(
        "rules",
        help="list the rules that locate first layers",
        description="List the rules tract_hub.locate tries, in order: registered (user) rules, then built-in rules.",
    )
    rules.add_argument("--json", action="store_true", help="print the rules as JSON")
    rules.set_defaults(handler=run_rules)


def parse_kwargs(pairs: list[str]) -> dict[str, Any]:
    """``["num_classes=10", "global_pool=avg"]`` -> ``{"num_classes": 10, "global_pool": "avg"}``."""
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise InvalidArgumentError(f"-k {pair!r} is not KEY=VALUE with a Python identifier as KEY")
        if json_depth(value) > MAX_DEPTH:
            raise InvalidArgumentError(f"-k {key}=...: the value is nested more than {MAX_DEPTH} levels deep")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return kwargs


def build(name: str, kwargs: dict[str, Any], device: str) -> Any:
    """Build ``name`` on ``device`` without downloading anything (torchvision backbones get no weights)."""
    import torch

    from ..models import create_model, resolve_architecture

    source, arch = resolve_architecture(name)
    if source == "torchvision":
        import inspect

        import torchvision

        builder = torchvision.models.get_model_builder(arch)
        if "weights_backbone" in inspect.signature(builder).parameters:
            kwargs = {"weights_backbone": None, **kwargs}
    with torch.device(device):
        return create_model(f"{source}:{arch}", **kwargs)


def _located(name: str, kwargs: dict[str, Any], verify: bool) -> tuple[Any, Any, str]:
    from ..errors import TrActError
    from ..models import resolve_architecture
    from ..registry import locate

    resolve_architecture(name)  # an unknown name fails here, with the names to use
    try:
        model = build(name, kwargs, "meta")
    except TrActError:
        raise
    except Exception as error:  # some constructors compute with tensors; build on the CPU then
        logger.info(
            "%s cannot be built on the meta device (%s: %s); building it on the CPU", name, type(error).__name__, error
        )
    else:
        try:
            located = locate(model, verify=verify)
        except FirstLayerNotFoundError as error:
            logger.info("locating on the meta device failed (%s); building %s on the CPU", error, name)
        else:
            if not verify or located.verified:
                return model, located, "meta"
            logger.info("verifying on the meta build failed (%s); building %s on the CPU", located.disagreement, name)
    model = build(name, kwargs, "cpu")
    return model, locate(model, verify=verify), "cpu"


def run_locate(args: argparse.Namespace) -> int:
    from ..core.names import class_name

    model, located, device = _located(args.name, parse_kwargs(args.kwarg), args.verify)
    report = {
        "name": args.name,
        "model_class": class_name(model),
        "built_on": device,
        "first_layers": [
            {"name": layer.name, "class": layer.layer_type, "module": repr(layer.module), "rule": layer.rule}
            for layer in located
        ],
        "tried": located.tried,
    }
    if args.verify:
        report["traced"] = located.traced
        report["disagreement"] = located.disagreement
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0 if not located.disagreement else 1
    print(f"{args.name}: {report['model_class']} (built on {device})")
    width = max(len(layer.name) for layer in located)
    for layer in located:
        print(f"  {layer.name:<{width}}  {layer.module!r}  [{layer.rule}]")
    if args.verify:
        if located.disagreement:
            print(f"verify: DISAGREES: {located.disagreement}")
            return 1
        trace = located.trace
        shapes = ", ".join("x".join(map(str, shape)) for shape in trace.inputs)
        print(f"verify: the trace agrees (traced on {trace.device}, inputs {shapes})")
    return 0


def run_rules(args: argparse.Namespace) -> int:
    from ..registry import list_rules

    rules = list_rules()
    if args.json:
        print(json.dumps([{**rule.to_dict(), "builtin": rule.builtin} for rule in rules], indent=2, sort_keys=True))
        return 0
    print(f"{len(rules)} rules, in the order tract_hub.locate tries them (then timm's first_conv, then tracing):")
    for rule in rules:
        source = "built-in" if rule.builtin else "user"
        matches = ", ".join(name.rsplit(".", 1)[-1] for name in rule.match)
        print(f"  {rule.name:<34} {source:<8} {matches:<40} -> {', '.join(rule.layers)}")
    return 0
