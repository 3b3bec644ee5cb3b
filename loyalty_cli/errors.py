"""The few exceptions the domain raises, and Problem values for reports of many errors.

Each exception carries the exit code of SPEC §3, so the CLI maps errors to exit
codes in one place. Validation that can find many problems at once (imports,
`db check`) returns lists of `Problem` values instead of raising on the first.
"""

from __future__ import annotations

from loyalty_cli import INTERRUPTED  # noqa: F401  (defined with the Ctrl-C handler, which runs first)
from loyalty_cli.i18n import _


class Problem:
    """One thing wrong: a bad input row (with its line) or a failed check. A value, not an exception."""

    __slots__ = ("message", "line", "check", "member_id")

    def __init__(self, message: str, line: int | None = None, check: str | None = None, member_id: str | None = None):
        self.message, self.line, self.check, self.member_id = message, line, check, member_id

    def __repr__(self) -> str:
        return f"Problem({self.message!r}, line={self.line}, check={self.check}, member_id={self.member_id})"

    def as_dict(self) -> dict:
        return {"line": self.line, "message": self.message}


class LoyaltyError(Exception):
    """Refused by a rule: unknown member, not enough points, voucher already used."""

    exit_code = 1


class NotFound(LoyaltyError):
    """Something named on the command line does not exist."""

    @classmethod
    def member(cls, member_id: str) -> "NotFound":
        return cls(_("member {member_id} not found (look for it with: loyalty members list --search {member_id}; add it with: loyalty members add --id {member_id} …)").format(member_id=member_id))


class UsageError(LoyaltyError):
    """A bad option or argument value: a malformed date, email or amount."""

    exit_code = 2


class InputFileError(LoyaltyError):
    """A CSV or TOML file that was rejected; `problems` lists every bad row."""

    exit_code = 3

    def __init__(self, message: str, problems: list[Problem] | None = None, summary: dict | None = None,
                 rows_skipped: bool = False):
        super().__init__(message)
        self.problems = problems or []
        self.summary = summary
        # --skip-bad: the good rows went through (imported, or checked by a dry run), the bad ones skipped
        self.rows_skipped = rows_skipped


class CheckFailed(LoyaltyError):
    """`db check` found problems."""

    exit_code = 4

    def __init__(self, message: str, problems: list[Problem]):
        super().__init__(message)
        self.problems = problems


class Busy(LoyaltyError):
    """Another process holds the database or the job's lock."""

    exit_code = 75


class Damaged(LoyaltyError):
    """The database file is damaged (SQLite finds it corrupt): restore a backup. Exit 4, as for
    `db check` finding problems."""

    exit_code = 4
