"""The sharing architectures' own search spaces, and the checks of a spec's ranges against them.

Each architecture in ``SHARING_ARCHITECTURES`` describes its searchable parameters as plain
data (``search_space()``, its layer ranges written for the encoder's depth) and checks a value
itself (``resolve_params``, the check ``build_model`` makes).  This module reads those spaces
into :class:`~taskgraph.spec.domains.Domain` objects, puts a spec's ``search.sharing`` ranges
over them, and refuses a range bound or value that an architecture would refuse in every
trial, so such a spec fails before a study is created.

It is apart from :mod:`taskgraph.search.space` because it is the part of the search space that
asks the model registry (imported only when called: it imports torch) and the encoder's
configuration.  :class:`~taskgraph.search.space.SearchSpace` builds its ``sharing`` domains
and checks a row's sharing parameters with it; the spec checks
(:mod:`taskgraph.search.checks`) read the encoder's depth and the registry's spaces from it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from taskgraph.errors import SpecError
from taskgraph.spec.domains import Domain
from taskgraph.spec.models import StudySpec

__all__ = [
    "domain_from_plain",
    "encoder_depth",
    "registry_spaces",
    "sharing_domains",
    "sharing_refusal",
]


def domain_from_plain(name: str, data: Mapping[str, Any]) -> Domain:
    """Return the :class:`Domain` of an architecture's plain-data parameter description.

    Accepts ``{"type": "float"|"int", "low", "high", "log"?, "step"?}``,
    ``{"type": "categorical", "choices": [...]}`` and ``{"value": x}``.
    """
    values = dict(data)
    kind = values.pop("type", None)
    values.pop("default", None)
    try:
        if kind == "categorical":
            if not isinstance(values.get("choices"), list | tuple):
                raise ValueError("a categorical parameter needs a list of `choices`")
            return Domain(choices=tuple(values["choices"]))
        if kind in ("int", "float"):
            return Domain(type=kind, **values)
        return Domain.model_validate(values)
    except (ValueError, TypeError) as error:  # pydantic's ValidationError is a ValueError
        raise SpecError(
            f"search space of {name}: cannot read {dict(data)!r}: {_reason(error)}"
        ) from None


def _reason(error: ValueError | TypeError) -> str:
    """Return one line saying why a plain description is not a Domain (pydantic's first
    error, without its multi-line report and link)."""
    if not isinstance(error, ValidationError):
        return str(error)
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def sharing_domains(
    sharing: Mapping[str, Mapping[str, Domain]],
    spaces: Mapping[str, Mapping[str, Mapping[str, Any]]],
    *,
    num_layers: int | None,
) -> dict[str, dict[str, Domain]]:
    """Return each architecture's domains: its own ``spaces`` with the spec's ranges over them.

    ``sharing`` is the spec's ``search.sharing``; ``num_layers`` the encoder's depth the
    architectures' own checks bound layer numbers by (None: unknown).  Raises
    :class:`SpecError` for a parameter an architecture does not have and for a value it refuses.
    """
    out: dict[str, dict[str, Domain]] = {}
    for arch, overrides in sharing.items():
        own = {k: domain_from_plain(f"{arch}.{k}", v) for k, v in spaces.get(arch, {}).items()}
        unknown = sorted(set(overrides) - set(own))
        if unknown:
            allowed = ", ".join(sorted(own)) or "(none)"
            raise SpecError(
                f"search.sharing.{arch}: unknown parameter {unknown[0]!r}; allowed: {allowed}"
            )
        _check_sharing_values(arch, overrides, num_layers=num_layers)
        out[arch] = {**own, **overrides}
    return out


def registry_spaces(
    names: list[str], *, num_layers: int | None = None
) -> dict[str, Mapping[str, Mapping[str, Any]]]:
    """Return each architecture's own space, its layer ranges written for ``num_layers``.

    ``num_layers`` is the study encoder's depth (None: the architectures' default, MiniLM's 6).
    A plug-in whose ``search_space`` takes no ``num_layers`` gets its own ranges.
    """
    # Imported here: the models package imports torch, which `study validate` should not pay
    # for unless the spec names architectures.
    from taskgraph.models.sharing import SHARING_ARCHITECTURES

    spaces: dict[str, Mapping[str, Mapping[str, Any]]] = {}
    for name in names:
        try:
            architecture = SHARING_ARCHITECTURES.get(name)
        except KeyError as error:
            raise SpecError(f"search.sharing: {error}") from None
        space = getattr(architecture, "search_space", None)
        if not callable(space):
            spaces[name] = {}
        elif num_layers is not None and "num_layers" in inspect.signature(space).parameters:
            spaces[name] = dict(space(num_layers=num_layers))
        else:
            spaces[name] = dict(space())
    return spaces


def _check_sharing_values(
    arch: str, overrides: Mapping[str, Domain], *, num_layers: int | None
) -> None:
    """Raise SpecError for a fixed value, choice or range bound ``arch`` itself refuses.

    Each is passed alone to the architecture's own check (:func:`sharing_refusal`), as the
    trial would get it (a bound of a float range as a float), so a value every trial would
    fail on is refused before a study is created.
    """
    for param, domain in overrides.items():
        for value in domain.values():  # a range's two bounds
            if domain.kind == "float" and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)  # what suggest_float gives a trial
            reason = sharing_refusal(arch, param, value, num_layers=num_layers)
            if reason is not None:
                raise SpecError(f"search.sharing.{arch}.{param}: {reason}")


def sharing_refusal(arch: str, param: str, value: Any, *, num_layers: int | None) -> str | None:
    """Return why ``arch`` refuses ``value`` of its ``param`` (None when it accepts it).

    The value is passed alone to the architecture's own ``resolve_params`` (the check
    ``build_model`` makes).  An architecture that is not registered (spaces given as plain
    data) or has no ``resolve_params`` is not checked.
    """
    from taskgraph.errors import ConfigError
    from taskgraph.models.sharing import SHARING_ARCHITECTURES

    try:
        architecture = SHARING_ARCHITECTURES.get(arch)
    except KeyError:
        return None
    resolve = getattr(architecture, "resolve_params", None)
    if not callable(resolve):
        return None
    try:
        # No heads: a value's check does not depend on the tasks (only the names
        # ``layer:<task>`` do, and those are not searchable).  An encoder of unknown depth
        # bounds no layer number here; the trial still checks it.
        resolve({param: value}, specs=(), num_layers=num_layers or 10**6)
    except ConfigError as error:
        return str(error)
    return None


def encoder_depth(spec: StudySpec) -> int | None:
    """Return the number of layers of the spec's encoder (None when its config does not say)."""
    from taskgraph.models.encoders import encoder_config

    config = encoder_config(spec.encoder.name, spec.encoder.options) or {}
    value = config.get("num_hidden_layers")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
