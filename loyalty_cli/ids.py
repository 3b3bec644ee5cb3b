"""One rule for member ids (SPEC §4): trimmed, NFC, and matched without regard to case everywhere.

`members.member_key` holds each member's id case-folded (values.member_key), indexed, written by
`members.enrol` (the only insert) and filled for older databases by migration m006: every lookup of
a typed id is one index probe, and an import resolves each distinct id of a chunk with one query.
The stored spelling is the one first enrolled. A database made before this rule may hold two ids
that differ only by case: a command naming either is refused as ambiguous (never merged silently),
and `db check` reports the pair.
"""

from __future__ import annotations

from loyalty_cli import values
from loyalty_cli.errors import LoyaltyError, NotFound
from loyalty_cli.store import members as member_rows
from loyalty_cli.i18n import M_, _


def ambiguous(typed: str, stored: list[str]) -> LoyaltyError:
    return LoyaltyError(M_("member id {typed} is ambiguous: members {join} differ only by case (both enrolled before ids matched without regard to case), and the tool will not guess which one is meant (loyalty db check lists such pairs)", typed=typed, join=' and '.join(stored)))


def resolve_member(tx, typed: str, what: str = M_("member id"), *, alias: bool = True, rows=None) -> str:
    """The stored spelling of the member a typed id names (`m0042` → `M0042`); the typed id
    (trimmed, NFC) when no member has it, so the caller's lookup says "not found". A typed id that
    could never be stored (an invisible character, too long) is a usage error (exit 2).

    A member merged into another (`members merge DUP --into KEEP`) is an alias: the id of the
    member kept, unless `alias` is false (the commands about that record itself: show, erase,
    merge, the statements of what it held).

    `rows`: where the member rows are looked up (store.members.ImportLookups, a members import's
    rows read in bulk); None: the database, one query at a time."""
    text = typed.strip() if isinstance(typed, str) else typed
    lookups = rows or member_rows
    found = lookups.ids_with_key(tx, values.member_key(text))
    if len(found) == 1:
        if alias:
            from loyalty_cli.store import hygiene as hygiene_rows

            return (rows or hygiene_rows).merged_into(tx, found[0]) or found[0]
        return found[0]
    if len(found) > 1:
        raise ambiguous(text, found)
    if lookups.exists(tx, text):
        return text  # stored behind the tool's back without its key: still found by its exact spelling
    return values.checked(values.parse_id, text, what)


def erased(member_id: str, role: str | None = None) -> LoyaltyError:
    """The refusal of anything new for an erased member (`role`: how the command names them, e.g.
    "the referrer"): one wording wherever it is refused."""
    named = _("member {member_id} ({role})").format(member_id=member_id, role=role) if role else _("member {member_id}").format(member_id=member_id)
    return LoyaltyError(M_("{named} was erased; erased members take no new activity", named=named))


def active_member(tx, typed: str, what: str = M_("member id")) -> str:
    """The stored id of the member a typed id names (resolve_member), who must be enrolled
    (NotFound otherwise) and not erased (an erased member takes no new activity, nor changes)."""
    member_id = resolve_member(tx, typed, what)
    found = member_rows.standing(tx, member_id)
    if found is None:
        raise NotFound.member(member_id)
    if found.erased_at:
        raise erased(member_id)
    return member_id


def existing_member(tx, typed: str) -> str:
    """The stored id of the member a typed id names, who must be enrolled (erased or not): for
    the commands that only look (history, balances, vouchers), which show a merged member's own
    record (not the member it was merged into)."""
    member_id = resolve_member(tx, typed, alias=False)
    if not member_rows.exists(tx, member_id):
        raise NotFound.member(member_id)
    return member_id


class Resolver:
    """Member ids of an import, resolved once per distinct id: `prepare(ids)` asks the database
    about the ids not seen yet with one query per 500 keys, `get(typed)` is then one dict look-up
    per row. A member the import enrols is `add`ed, so a later row spelling it another way is that
    member."""

    LIMIT = 200_000  # typed ids remembered (each a few dozen bytes), then forgotten and asked again

    def __init__(self, tx):
        self.tx = tx
        self.found: dict[str, str | list] = {}   # typed id → stored id, or the stored ids of an ambiguous one
        self.stored: dict[str, str | list] = {}  # key → the same, for ids typed in a spelling not seen yet
        self.aliases: dict[str, str] = {}  # merged member → the member kept, of the ids resolved

    @staticmethod
    def key(typed: str) -> str:
        return values.member_key(typed)

    def prepare(self, typed_ids) -> None:
        found = self.found
        new = {t for t in typed_ids if t not in found}
        if not new:
            return
        if len(found) > self.LIMIT:
            found.clear()
            self.stored.clear()
        keys = {t: values.member_key(t) for t in new}
        wanted = list({k for k in keys.values() if k not in self.stored})
        from loyalty_cli.store import hygiene as hygiene_rows

        for start in range(0, len(wanted), 500):
            part = wanted[start:start + 500]
            # A merged member's id resolves to the member kept (an alias), in the same query.
            for key, mid, kept in hygiene_rows.ids_with_keys_and_aliases(self.tx, part):
                if kept is not None:
                    self.aliases[mid] = kept
                    mid = kept
                have = self.stored.get(key)
                self.stored[key] = mid if have is None else sorted((have if isinstance(have, list) else [have]) + [mid])
        for typed, key in keys.items():
            stored = self.stored.get(key)
            if stored is not None:
                found[typed] = stored

    def get(self, typed: str) -> str:
        """The stored spelling, or the typed id when no member has it; LoyaltyError when ambiguous."""
        stored = self.found.get(typed)
        if stored is None:  # not enrolled when prepared; perhaps by an earlier row of this import
            stored = self.stored.get(values.member_key(typed), typed)
        if stored.__class__ is list:
            raise ambiguous(typed, stored)
        return stored

    def peek(self, typed: str) -> str:
        """`get` without the refusal: an ambiguous id stays as typed (its row is refused by `get`)."""
        stored = self.found.get(typed, typed)
        return typed if stored.__class__ is list else stored

    def add(self, member_id: str) -> None:
        self.stored[values.member_key(member_id)] = member_id
