"""Plain coercion for the parameter types this CLI uses, without pydantic.

The Typer this project installs (0.29) checks every parameter's value through a
pydantic `TypeAdapter`, built the first time the parameter is processed:
importing pydantic and building the adapters cost about 0.1 s of every command,
a third of a counter command's whole time. Our parameters are `str`, `int`,
`bool`, `Path` and `list[str]`; for the values that need no judgement (a string
for `str`, a short run of ASCII digits within the bounds for `int`, a bool for
`bool`, strings for `list[str]`, a non-empty string for an unconstrained
`Path`) the result is the same as Typer's, so we give it directly. Anything
else -- a bad or negative integer, a bound not met, a path with checks -- goes
through Typer's own adapter, with Typer's own error message.

If Typer's internals change shape, `install()` does nothing and every value
takes Typer's path: slower, never different.
"""
from __future__ import annotations

import os
from pathlib import Path


def _plain_param_class(dataclass, RuntimeParam, build_runtime_param):  # noqa: N803 -- Typer's class names
    """The RuntimeParam subclass that answers for plain values (see the module docstring)."""

    @dataclass(frozen=True)
    class PlainParam(RuntimeParam):
        def _coerce_value(self, value, param, ctx):
            kind, info = self.annotation, self.parameter_info
            if kind is str:
                if isinstance(value, str):
                    return value
            elif kind is int:
                # Short digit strings only: Python refuses to convert one over 4,300 digits (Typer says so).
                plain = isinstance(value, str) and len(value) <= 18 and value.isascii() and value.isdigit()
                number = int(value) if plain else value
                if type(number) is int and not getattr(info, "clamp", False) \
                        and (info.min is None or number >= info.min) and (info.max is None or number <= info.max):
                    return _in_range(number, param, ctx)
            elif kind is bool:
                if type(value) is bool:
                    return value
            elif kind == STRINGS:
                if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
                    return list(value)
            elif kind is Path:
                if isinstance(value, str) and value and not _path_checks(info) and _readable_or_absent(value, info):
                    return Path(value)
            # Anything needing judgement: Typer's own adapter and message.
            full = build_runtime_param(param.type_descriptor)
            param._runtime_param = full
            return _in_range(full._coerce_value(value, param, ctx), param, ctx)

    return PlainParam


STRINGS = list[str]


def install() -> None:
    try:
        from dataclasses import dataclass

        from typer._coercion import RuntimeParam, build_runtime_param
        from typer.core import _TyperParameter
    except ImportError:  # another Typer: keep its coercion
        return
    if not hasattr(_TyperParameter, "get_runtime_param"):
        return
    try:
        plain_param = _plain_param_class(dataclass, RuntimeParam, build_runtime_param)
    except Exception:  # noqa: BLE001 -- whatever another Typer's classes do, keep its own coercion
        return
    original = _TyperParameter.get_runtime_param

    def get_runtime_param(self):
        if self._runtime_param is None:
            descriptor = self.type_descriptor
            if descriptor.annotation in (str, int, bool, Path, STRINGS) and descriptor.file_annotation is None \
                    and not descriptor.is_choice:
                try:
                    self._runtime_param = plain_param(parameter_info=descriptor.parameter_info,
                                                      annotation=descriptor.annotation)
                except TypeError:  # RuntimeParam changed shape in another Typer: its own coercion
                    return original(self)
            else:
                return original(self)
        return self._runtime_param

    _TyperParameter.get_runtime_param = get_runtime_param


# No count, number of days or of points this tool takes comes near this; beyond it SQLite's 64-bit
# integers and the calendar overflow, which must be a usage error, not an unexpected one.
INT_LIMIT = 10**15


def _in_range(value, param, ctx):
    if type(value) is int and abs(value) > INT_LIMIT:
        from typer import BadParameter

        raise BadParameter(f"{value} is out of range (at most {INT_LIMIT:,})", ctx=ctx, param=param)
    return value


def _path_checks(info) -> bool:
    """Whether a Path parameter asks Typer to check or transform it."""
    return bool(getattr(info, "exists", False) or getattr(info, "resolve_path", False)
                or getattr(info, "writable", False) or getattr(info, "dir_okay", True) is False
                or getattr(info, "file_okay", True) is False or getattr(info, "allow_dash", False)
                or getattr(info, "path_type", None) is not None)


def _readable_or_absent(value: str, info) -> bool:
    """Typer's one check on a default Path parameter: if the path exists, it must be readable."""
    return not getattr(info, "readable", True) or not os.path.exists(value) or os.access(value, os.R_OK)
