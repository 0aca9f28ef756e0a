"""Dagster config classes generated from the engine's settings dataclasses, field for field.

The resources expose the non-secret settings as config, so the launchpad shows every value a run
uses and can override it; generating the classes from ``distillset.settings`` keeps one source of
truth for names, types, defaults and help texts. Secrets never become config fields: they reach
the resources through ``dg.EnvVar`` only.

Why defaults rather than constructor values: Dagster replaces a configured resource's whole config
when a run gives part of it (dagster-io/dagster#12898), so a launchpad override of one field would
send every other field back to its class default. :func:`with_defaults` therefore builds, once per
code location, subclasses whose *defaults* are the environment's values; an override of one field
keeps the others as the environment set them.
"""

import dataclasses
import typing
from pathlib import Path

import dagster as dg
import pydantic


def _config_type(annotation: typing.Any) -> typing.Any:
    if typing.get_origin(annotation) is tuple:
        return list[str]
    if annotation is Path:
        return str
    args = typing.get_args(annotation)
    if Path in args:
        return str | None
    return annotation


def _config_default(value: typing.Any) -> typing.Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return value


def config_class(settings_cls: type, *, exclude: tuple[str, ...] = (), defaults: typing.Any = None) -> type[dg.Config]:
    """A ``dg.Config`` subclass with the fields of ``settings_cls`` (nested dataclasses and secrets
    excluded), whose defaults are ``defaults``' values (a ``settings_cls`` instance) or the class's."""
    hints = typing.get_type_hints(settings_cls)
    fields = {}
    for spec in dataclasses.fields(settings_cls):
        if spec.name in exclude or dataclasses.is_dataclass(hints[spec.name]) or spec.metadata.get("secret"):
            continue
        if defaults is not None:
            default = getattr(defaults, spec.name)
        else:
            default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
        env = spec.metadata.get("env") or ()
        description = " ".join(filter(None, [spec.metadata.get("help"), f"(default from {env[0]})" if env else None]))
        fields[spec.name] = (
            _config_type(hints[spec.name]),
            pydantic.Field(default=_config_default(default), description=description or None),
        )
    name = settings_cls.__name__.removesuffix("Settings") + "Config"
    return pydantic.create_model(name, __base__=dg.Config, __module__=__name__, **fields)


def with_defaults(cls: type[pydantic.BaseModel], **defaults: typing.Any) -> type[pydantic.BaseModel]:
    """A subclass of ``cls`` (a resource or config class) whose fields default to ``defaults``.

    A value that is itself a config *instance* makes that field's type the instance's class, so a
    nested config keeps its own defaults too; a ``dg.EnvVar`` default stays an ``EnvVar`` (resolved
    in the process that runs the step, never shown).
    """
    fields = {}
    for name, value in defaults.items():
        annotation = type(value) if isinstance(value, dg.Config) else cls.model_fields[name].annotation
        fields[name] = (annotation, _config_default(value))
    return pydantic.create_model(cls.__name__, __base__=cls, __module__=cls.__module__, **fields)


def to_settings(settings_cls: type, config: dg.Config, **extra: typing.Any) -> typing.Any:
    """``settings_cls`` built from ``config``'s fields plus ``extra`` (validated on construction)."""
    hints = typing.get_type_hints(settings_cls)
    values = {}
    for name in type(config).model_fields:
        value = getattr(config, name)
        if value is not None and (hints[name] is Path or Path in typing.get_args(hints[name])):
            value = Path(value)
        values[name] = value
    return settings_cls(**values, **extra)
