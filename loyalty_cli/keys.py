"""The chain key: a secret kept outside the database that signs every block of the chain.

Every state change is written to the chain (`store.chain`), each block hashed over the one
before it. A hash chain alone proves only that the blocks hang together: whoever can edit the
file can rewrite a block and recompute every later hash. So each block's hash is also signed
with HMAC-SHA256 under a key that lives in a file of its own (`LOYALTY_KEY_FILE`, by default
`$XDG_CONFIG_HOME/loyalty/chain.key`, else under ~/.config), made 0600 by `loyalty init`.
Someone who can write the database but cannot read the key cannot forge a chain that
`loyalty db check` accepts.

The file holds 64 hex digits (32 random bytes) and a newline. A key is named by its id, the
first 16 hex digits of HMAC(key, "loyalty chain key id"): the chain records the id of the
key that signs it, so a wrong key file is named as such instead of failing every block.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from loyalty_cli.errors import LoyaltyError, UsageError
from loyalty_cli.i18n import M_, _

KEY_BYTES = 32
_HEX = re.compile(r"[0-9a-f]{64}")


def config_dir(environ) -> Path:
    """`$XDG_CONFIG_HOME/loyalty`, else ~/.config/loyalty: where the key and the anchors live."""
    base = environ.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative path is invalid and ignored
        base = os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "loyalty"


def chosen_path(given: str | None, option: str, variable: str, environ, what: str) -> Path | None:
    """The path an option (`given`, named `option`) or else the environment variable `variable`
    names, or None for neither; an empty one is a usage error (an unset shell variable)."""
    if given is not None:
        if not str(given).strip():
            raise UsageError(M_("{option} was given an empty path; give the path of {what}", option=option, what=what))
        return Path(given)
    env = environ.get(variable)
    if env is not None:
        if not env.strip():
            raise UsageError(M_("{variable} is set but empty; give it the path of {what}, or unset it", variable=variable, what=what))
        return Path(env)
    return None


def default_path(environ) -> Path:
    """`$XDG_CONFIG_HOME/loyalty/chain.key` (else ~/.config/loyalty/chain.key): one per user, shared by
    the databases that user keeps (a chain of shops copies it to every till)."""
    return config_dir(environ) / "chain.key"


def resolve_path(environ) -> Path:
    """`LOYALTY_KEY_FILE` beats the default."""
    return chosen_path(None, "", "LOYALTY_KEY_FILE", environ, _("the chain key file")) or default_path(environ)


def key_id(key: bytes) -> str:
    """The key's public name: 16 hex digits that say which key signed a chain, and reveal nothing of it."""
    import hmac

    return hmac.new(key, b"loyalty chain key id", "sha256").hexdigest()[:16]


def read(path: Path) -> bytes | None:
    """The key in the file, or None when there is no such file. A file that is not a key, or cannot
    be read, is an error naming it (never a silent fallback to no key)."""
    try:
        with open(path, "rb") as f:
            text = f.read(200)
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise LoyaltyError(M_("the chain key file {path} is a directory; point LOYALTY_KEY_FILE at the key file", path=path)) from None
    except OSError as exc:
        raise LoyaltyError(M_("cannot read the chain key file {path}: {value}", path=path, value=exc.strerror or exc)) from None
    found = text.decode("ascii", "replace").strip().lower()
    if not _HEX.fullmatch(found):
        raise LoyaltyError(M_("{path} is not a loyalty chain key (64 hex digits); restore the key file from your backup, or point LOYALTY_KEY_FILE at it", path=path))
    return bytes.fromhex(found)


def create(path: Path) -> bytes:
    """A new random key written to `path` (0600; missing folders 0700), unless a key is there
    already (another command made it a moment ago): that one is returned. Never overwrites."""
    from loyalty_cli.store import make_private_dir

    try:
        make_private_dir(path.parent)
    except OSError as exc:
        raise LoyaltyError(M_("cannot create the folder for the chain key {parent}: {value}; set LOYALTY_KEY_FILE to a place you can write", parent=path.parent, value=exc.strerror or exc)) from None
    key = os.urandom(KEY_BYTES)
    partial = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (key.hex() + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(partial, path)  # atomic, and refuses to replace a key someone made meanwhile
        except FileExistsError:
            existing = read(path)
            if existing is None:
                raise LoyaltyError(M_("the chain key file {path} appeared and went again; run the command again", path=path)) from None
            return existing
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise LoyaltyError(M_("cannot create the chain key file {path}: {value}; set LOYALTY_KEY_FILE to a place you can write", path=path, value=exc.strerror or exc)) from None
    finally:
        try:
            os.unlink(partial)
        except OSError:
            pass
    return key
