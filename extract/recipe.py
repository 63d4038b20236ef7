"""A store's feature recipe: what made its features, so new videos can be given the same ones.

``store.json`` records ``recipe = {"extractor": NAME, "options": {...}}``: the extractor (or
``clip-frames``) and every option of its spec that shapes the features; the options that only
change how the work is done (processes, shards, device, batch size, decoder backend) are left
out. Stores imported by ``extract pack`` record ``{"extractor": "unknown", ...}`` with what their
dataset card says, since public feature sets were made by code outside this toolkit. The weights
are identified separately, by ``model`` (name and sha256), which :func:`check_model` compares.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .errors import ExtractError

OPERATIONAL = frozenset({"workers", "shards", "retry_failed", "strict", "device", "batch_size", "decoder"})
UNKNOWN = "unknown"


class RecipeError(ExtractError):
    """A recipe that cannot be reproduced here; the message says what is missing and how to pass it."""


def make_recipe(extractor: str, spec: Any) -> dict[str, Any]:
    options = {f.name: _plain(getattr(spec, f.name)) for f in dataclasses.fields(spec) if f.name not in OPERATIONAL}
    return {"extractor": extractor, "options": options}


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def spec_from_recipe(recipe: dict[str, Any], where: str, others: dict[str, type] | None = None,
                     **operational: Any) -> tuple[str, Any]:
    """``(extractor name, spec)`` rebuilt from a recipe, with ``operational`` settings on top;
    ``others`` names spec classes of writers that are not registered extractors (``clip-frames``)."""
    from .extractors import EXTRACTORS
    from .registry import RegistryError

    name = recipe.get("extractor", UNKNOWN)
    if name == UNKNOWN:
        source = recipe.get("source") or "features made outside mamba-tad"
        raise RecipeError(f"{where}: the extractor that made these features is unknown ({source}); pass "
                          f"--recipe STREAM=FILE.yaml with 'extractor' and its 'options', or extract the new videos "
                          f"yourself and run `detect infer --store`")
    if name in (others or {}):
        spec_cls = others[name]
    else:
        try:
            spec_cls = EXTRACTORS.get(name).spec
        except RegistryError as exc:
            raise RecipeError(f"{where}: {exc}") from None
    known = {f.name for f in dataclasses.fields(spec_cls)}
    options = dict(recipe.get("options") or {})
    foreign = sorted(set(options) - known)
    if foreign:
        raise RecipeError(f"{where}: options {foreign} are not {name}'s (a recipe of another version?)")
    options.update({k: v for k, v in operational.items() if k in known})
    try:
        return name, spec_cls(**options)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"{where}: {exc}") from None


def check_model(recorded: dict[str, Any], built: dict[str, Any], where: str) -> None:
    """The weights loaded now must be the ones that made the training features (by sha256)."""
    def digests(model: dict[str, Any]) -> dict[str, str | None]:
        out = {"": model.get("sha256")}
        out.update({k: v.get("sha256") for k, v in (model.get("streams") or {}).items()})
        return out

    want, have = digests(recorded), digests(built)
    for key, sha in want.items():
        if sha is None:
            continue
        if have.get(key) != sha:
            part = f" ({key})" if key else ""
            raise RecipeError(f"{where}: the weights{part} here have sha256 {str(have.get(key))[:12]}..., the "
                              f"training features were made with {recorded.get('name')} sha256 {sha[:12]}...")
