"""Plain coercion for the parameter types this CLI uses, without pydantic.

The Typer this project installs (0.29) checks every parameter's value through a
pydantic `TypeAdapter`, built the first time the parameter is processed:
importing pydantic and building the adapters cost about 0.1 s of every command,
a third of a counter command's whole time. Our parameters are `str`, `int`,
`bool`, `Path` and `list[str]`; for the values that need no judgement (a string
for `str`, a bool for `bool`, strings for `list[str]`, a non-empty string for an
unconstrained `Path`) the result is the same as Typer's, so we give it directly.
Integers are ours whole: a whole number within the parameter's bounds, or a
usage error that names the parameter and says what it takes ("POINTS must be a
positive whole number, got -5") instead of pydantic's "Input should be a valid
integer". Anything else -- a path with checks -- goes through Typer's own adapter.

If Typer's internals change shape, `install()` does nothing and every value
takes Typer's path: slower, in Typer's words.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from loyalty_cli.i18n import _


def _plain_param_class(dataclass, RuntimeParam, build_runtime_param):  # noqa: N803 -- Typer's class names
    """The RuntimeParam subclass that answers for plain values (see the module docstring)."""

    @dataclass(frozen=True)
    class PlainParam(RuntimeParam):
        def _coerce_value(self, value, param, ctx):
            kind, info = self.annotation, self.parameter_info
            if kind is str:
                if isinstance(value, str):
                    return value
            elif kind is int and not getattr(info, "clamp", False):
                return whole_number(value, param, ctx, info.min, info.max)
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

WHOLE = re.compile(r"[+-]?[0-9]{1,18}")  # ASCII digits only, short: int() refuses over 4,300 digits


def whole_number(value, param, ctx, low=None, high=None) -> int:
    """An integer typed on the command line, or a usage error naming the parameter in the shop's
    words: "POINTS must be a positive whole number, got -5" (never a validation library's)."""
    if type(value) is int:
        number = value
    elif isinstance(value, str) and WHOLE.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        number = None
    if number is not None and (low is None or number >= low) and (high is None or number <= high) \
            and abs(number) <= INT_LIMIT:
        return number
    from typer import BadParameter

    from loyalty_cli.cli.usage import display_name

    raise BadParameter(_("{display_name} must be {whole_kind}, got {shown}").format(display_name=display_name(param), whole_kind=whole_kind(low, high), shown=_shown(value)),
                       ctx=ctx, param=param)


def whole_kind(low, high) -> str:
    """What a whole-number parameter takes, in words: "a positive whole number", "a whole number
    from 0 to 36,500"."""
    high = INT_LIMIT if high is None else high
    if low is None:
        return _("a whole number") if high == INT_LIMIT else _("a whole number up to {high:,}").format(high=high)
    if low == 1 and high == INT_LIMIT:
        return _("a positive whole number")
    if low == 0 and high == INT_LIMIT:
        return _("a whole number, zero or more")
    if high == INT_LIMIT:
        return _("a whole number of at least {low:,}").format(low=low)
    return _("a whole number from {low:,} to {high:,}").format(low=low, high=high)


def _shown(value) -> str:
    text = str(value)
    return text if text and text.strip() == text and " " not in text else repr(text)


def _in_range(value, param, ctx):
    if type(value) is int and abs(value) > INT_LIMIT:
        return whole_number(value, param, ctx)
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
