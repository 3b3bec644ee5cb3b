"""The language people read: English, or Simplified Chinese from a gettext catalogue.

Every message written for a person is marked in the source: `_("…")` translates at once (the
text of an error, a summary line, a table header), `N_("…")` only marks a text kept at module
level and translated where it is shown, `M_("…", **values)` makes a message that stays English
where machines read it (`--json`, `--csv`: an import's bad rows, a failed check) and is
translated where a person reads it (`display`). `plural(n, "word")` (render) marks its word too.

The catalogue is `locale/zh_CN/LC_MESSAGES/loyalty.mo`, compiled from the `.po` beside it by
`make messages`. English needs no catalogue: it is the source text, and it is never opened
(nor `gettext` imported) when the language is English, so start-up stays as it was.

The language of one invocation (`choose`): `--lang en|zh`, else `LOYALTY_LANG`, else the
POSIX locale variables (`LC_ALL`, then `LC_MESSAGES`, then `LANG`: `zh_CN.UTF-8`, `zh_CN` or
`zh` is Chinese, anything else English). It is decided before any help is built or anything is
printed, per invocation (the tests run many in one process).
"""

from __future__ import annotations

import os

LANGUAGES = ("en", "zh")
DOMAIN = "loyalty"

_catalogue = None  # the GNUTranslations of the current language; None for English
_language = "en"
_loaded: dict = {}


def N_(message: str) -> str:
    """Mark a text for translation without translating it (translated where it is shown)."""
    return message


def _(message: str) -> str:
    """`message` in the current language (itself in English, or when the catalogue lacks it)."""
    if _catalogue is None or not message:
        return message
    return _catalogue.gettext(message)


class Msg(str):
    """A message that is English where a machine reads it and translated where a person does.

    It is the English text (a `str`: JSON and CSV write it as it is, and it compares and joins as
    English); `display(msg)` gives it in the current language, from its template and values."""

    def __new__(cls, template: str, values: dict | None = None):
        values = values or {}
        self = super().__new__(cls, template.format(**values) if values else template)
        self.template, self.values = template, values
        return self


def M_(template: str, **values) -> Msg:
    """A message for machines and people alike (see Msg)."""
    return Msg(template, values)


def worded(english: str, people: str) -> Msg:
    """A message made by rewording another (an option named in a parser's error): `english` where
    machines read it, `people` (already in the current language) where a person does."""
    msg = Msg(english, {})
    msg.people = people
    return msg


def joined(separator: str, items) -> Msg:
    """Messages joined by `separator` (the differences a check found, "; "): English where machines
    read it, each item in the current language where a person does (`display`)."""
    items = list(items)
    msg = Msg(separator.join(items), {})
    msg.parts = (separator, items)
    return msg


def display(text) -> str:
    """What a person reads of `text`: a Msg translated (its values too; an exception's by its
    message), anything else as it is."""
    if isinstance(text, BaseException):
        text = message_of(text)
    if isinstance(text, Msg) and _catalogue is not None:
        people = getattr(text, "people", None)
        if people is not None:
            return people
        parts = getattr(text, "parts", None)
        if parts is not None:
            return parts[0].join(display(item) for item in parts[1])
        if not text.values:  # a message without values is not a template: its braces are text
            return _(text.template)
        values = {k: display(v) if isinstance(v, (Msg, BaseException)) else v for k, v in text.values.items()}
        return _(text.template).format(**values)
    return str(text) if text is not None else ""


def message_of(exc: BaseException):
    """An exception's message as raised: the Msg itself when it is one (`str(exc)` would give a
    plain English copy), for a Problem that --json writes in English and a person reads translated."""
    return exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], Msg) else str(exc)


def language() -> str:
    """The language of the running invocation: "en" or "zh"."""
    return _language


def set_language(lang: str) -> None:
    """Use `lang` ("en" or "zh") from now on; the Chinese catalogue is read the first time."""
    global _catalogue, _language
    _language = lang
    if lang == "en":
        _catalogue = None
        return
    if lang not in _loaded:
        import gettext
        from pathlib import Path

        localedir = Path(__file__).parent / "locale"
        _loaded[lang] = gettext.translation(DOMAIN, localedir=str(localedir), languages=[LOCALES[lang]],
                                            fallback=True)
    _catalogue = _loaded[lang]
    from loyalty_cli import i18n_click

    i18n_click.install()


LOCALES = {"zh": "zh_CN"}


def from_locale(value: str) -> str:
    """A POSIX locale name (`zh_CN.UTF-8`, `zh_CN`, `zh`, `en_GB.UTF-8`, `C`) → "zh" or "en"."""
    name = value.split(".", 1)[0].split("@", 1)[0].replace("-", "_").lower()
    return "zh" if name in ("zh", "zh_cn", "zh_sg", "zh_hans", "zh_hans_cn") else "en"


def parse_lang(value: str) -> str | None:
    """A value of --lang or LOYALTY_LANG → "en" or "zh"; None when it names neither. A locale name
    is accepted too (`zh_CN.UTF-8`, `en_US`): its language counts."""
    word = value.strip()
    if word.lower() in LANGUAGES:
        return word.lower()
    name = word.split(".", 1)[0].replace("-", "_").lower()
    if name.startswith("en_"):
        return "en"
    if name in ("zh_cn", "zh_sg", "zh_hans"):
        return "zh"
    return None


def from_environment(environ=None) -> str:
    """The language the environment asks for: LOYALTY_LANG (checked), else LC_ALL, LC_MESSAGES,
    LANG (the first that is set and not empty, as POSIX reads them). Raises ValueError naming
    LOYALTY_LANG when it holds something else than a language this tool speaks."""
    environ = os.environ if environ is None else environ
    own = environ.get("LOYALTY_LANG")
    if own is not None and own.strip():
        lang = parse_lang(own)
        if lang is None:
            raise ValueError(own)
        return lang
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return from_locale(value)
    return "en"


def lang_in_args(args) -> tuple[str | None, bool]:
    """The value of `--lang` in a command line (the last one given; not after `--`), and whether
    one was given. A `--lang` with no value gives (None, True)."""
    found, given = None, False
    args = list(args)
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--lang":
            given = True
            found = args[i + 1] if i + 1 < len(args) else None
        elif arg.startswith("--lang="):
            given, found = True, arg[len("--lang="):]
    return found, given
