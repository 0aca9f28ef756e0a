"""How a setting is declared: its environment variable, its rule and its bounds, in one place.

Every field of a settings dataclass is declared with :func:`setting`; :func:`validate` (called by
each dataclass's ``__post_init__``) checks the bounds and :func:`load_section` reads the fields
from an environment mapping. Messages name the environment variable, so a user who set it knows
what to change, and a caller who built the dataclass in code learns the same name.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from distillset.settings.env import PARSERS, InvalidValue, SettingsError, raw


def setting(
    default: Any = dataclasses.MISSING,
    *,
    env: str | tuple[str, ...] | None = None,
    rule: str | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    choices: Callable[[], Any] | None = None,
    check: Callable[[Any], str | None] | None = None,
    secret: bool = False,
    help: str = "",  # noqa: A002 - the word users read in the generated docs
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field with the metadata :func:`validate` and :func:`load_section` read.

    Args:
        default: the default value (or use ``default_factory``).
        env: the environment variable, or several (the first one set wins).
        rule: the parser of ``distillset.settings.env.PARSERS``; inferred from the type if omitted.
        ge, gt, le: numeric bounds (None values are not checked).
        choices: returns the allowed values (a callable, so heavy imports stay lazy).
        check: returns a problem sentence for a bad value, or None.
        secret: the value is never echoed in an error message nor in ``repr``.
        help: one line for humans (the README table and the launchpad).
    """
    metadata = {
        "env": (env,) if isinstance(env, str) else env,
        "rule": rule,
        "ge": ge,
        "gt": gt,
        "le": le,
        "choices": choices,
        "check": check,
        "secret": secret,
        "help": help,
    }
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata, repr=not secret)
    return dataclasses.field(default=default, metadata=metadata, repr=not secret)


def env_name(spec: dataclasses.Field) -> str:
    """The (first) environment variable of a field, or its attribute name when it has none."""
    names = spec.metadata.get("env")
    return names[0] if names else spec.name


def _shown(spec: dataclasses.Field, value: Any) -> str:
    return "(hidden)" if spec.metadata.get("secret") else repr(value)


def problems_of(instance: Any) -> list[str]:
    """Every bound a dataclass instance's fields break, one sentence each."""
    problems = []
    for spec in dataclasses.fields(instance):
        value = getattr(instance, spec.name)
        if value is None or dataclasses.is_dataclass(value):
            continue
        meta = spec.metadata
        where = f"{env_name(spec)}={_shown(spec, value)}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if meta.get("ge") is not None and value < meta["ge"]:
                problems.append(f"{where} must be at least {meta['ge']:g}")
            if meta.get("gt") is not None and value <= meta["gt"]:
                problems.append(f"{where} must be greater than {meta['gt']:g}")
            if meta.get("le") is not None and value > meta["le"]:
                problems.append(f"{where} must be at most {meta['le']:g}")
        if meta.get("choices") is not None:
            allowed = list(meta["choices"]())
            values = value if isinstance(value, (tuple, list)) else (value,)
            unknown = [v for v in values if v not in allowed]
            if unknown:
                problems.append(
                    f"{where}: unknown value(s) {', '.join(map(str, unknown))}; known: {', '.join(map(str, allowed))}"
                )
        if meta.get("check") is not None:
            problem = meta["check"](value)
            if problem:
                problems.append(f"{where} {problem}")
    return problems


def validate(instance: Any) -> None:
    """Raise :class:`SettingsError` naming every broken bound of ``instance``."""
    problems = problems_of(instance)
    if problems:
        raise SettingsError(problems)


def _rule_for(spec: dataclasses.Field, annotation: Any) -> str:
    if spec.metadata.get("rule"):
        return spec.metadata["rule"]
    base = annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        base = next(a for a in typing.get_args(annotation) if a is not type(None))
    origin = typing.get_origin(base)
    if base is bool:
        return "bool"
    if base is int:
        return "int"
    if base is float:
        return "float"
    if origin in (tuple, list):
        return "list"
    return "str"


def load_section(cls: type, environ: Mapping[str, str], problems: list[str], **given: Any) -> Any:
    """Build ``cls`` from ``environ`` (nested settings dataclasses recursively); bad values append
    to ``problems`` and fall back to the default, so one read reports every problem at once.

    ``given`` overrides fields (values already computed by the caller).
    """
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(cls):
        if spec.name in given:
            values[spec.name] = given[spec.name]
            continue
        annotation = hints[spec.name]
        if dataclasses.is_dataclass(annotation):
            values[spec.name] = load_section(annotation, environ, problems)
            continue
        for name in spec.metadata.get("env") or ():
            text = raw(environ, name)
            if text is None:
                continue
            try:
                value = PARSERS[_rule_for(spec, annotation)](text)
            except InvalidValue as exc:
                shown = "(hidden)" if spec.metadata.get("secret") else repr(text)
                problems.append(f"{name}={shown} {exc}")
                break
            if annotation is Path or Path in typing.get_args(annotation):
                value = Path(value).expanduser()
            values[spec.name] = value
            break
    try:
        return cls(**values)
    except SettingsError as exc:
        problems.extend(exc.problems)
        valid = {
            k: v
            for k, v in values.items()
            if not any(p.startswith(f"{env_name(_field(cls, k))}=") for p in exc.problems)
        }
        return cls(**valid)


def _field(cls: type, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(cls) if f.name == name)


def describe(cls: type, prefix: str = "") -> list[dict]:
    """Every environment variable of ``cls`` (recursively): name, default, help, secret."""
    rows = []
    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        annotation = hints[spec.name]
        if dataclasses.is_dataclass(annotation):
            rows += describe(annotation, f"{prefix}{spec.name}.")
            continue
        default = spec.default if spec.default is not dataclasses.MISSING else None
        rows.append(
            {
                "setting": prefix + spec.name,
                "env": list(spec.metadata.get("env") or ()),
                "default": default,
                "help": spec.metadata.get("help", ""),
                "secret": bool(spec.metadata.get("secret")),
            }
        )
    return rows
