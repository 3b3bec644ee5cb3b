"""`db check` for experiments: their rows rebuilt from the chain (for the replay), and every
variant marker agreeing with the experiments' terms.

- The replay (`ChainedExperiments`): each experiment as the chain recorded it when it started, with
  its stop, compared whole with table `experiments` (a share, a start date or a variant changed
  in place, a row added or deleted behind the tool's back, are named).
- `check_variant_marks`: an entry marked as earned under a variant is a signup, earn, bonus or
  referral credit of a member in that experiment's variant group, dated while it ran; and every
  such credit is marked. A marker forged onto a control member's entry, or deleted from a variant
  member's, is named even where the chain was rewritten with the key.

Pure: rows through store.experiments and store.checks.
"""

from __future__ import annotations

from loyalty_cli.errors import Problem
from loyalty_cli.i18n import M_, joined as each_shown
from loyalty_cli.store import checks as check_rows

LIMIT = 100
FIELDS = ("id", "variant", "share", "starts_on", "stops_on", "started_at", "source")
EARNED = ("signup", "earn", "bonus", "referral")


def _has_table(tx) -> bool:
    return "experiments" in check_rows.table_names(tx)


def _show(value) -> str:
    text = repr(value) if isinstance(value, str) else ("NULL" if value is None else str(value))
    return text if len(text) <= 60 else text[:57] + "..."


class ChainedExperiments:
    """The experiments as the chain's records make them."""

    def __init__(self):
        self.by_name: dict[str, dict] = {}

    def take(self, kind: str, records: list, block_id: int) -> None:
        if kind == "experiments":
            for eid, name, variant, share, starts_on, started_at, source in records:
                self.by_name[name] = {"id": eid, "variant": variant, "share": share, "starts_on": starts_on,
                                      "stops_on": None, "started_at": started_at, "source": source, "block": block_id}
        else:
            for name, stops_on in records:
                if name in self.by_name:
                    self.by_name[name]["stops_on"] = stops_on

    def compare(self, tx, r) -> None:
        """Add to `r` (a replay.Replay) a problem for every experiment row that differs from the chain."""
        if not _has_table(tx):
            return
        from loyalty_cli.store import experiments as rows

        seen = set()
        for row in rows.all_experiments(tx):
            seen.add(row.name)
            want = self.by_name.get(row.name)
            if want is None:
                r.problem(M_("experiment {name} is not in the chain: it was added behind the tool's back", name=row.name))
                continue
            wrong = [M_("{field} is {found} but the chain recorded {want}", field=field, found=_show(getattr(row, field)),
                        want=_show(want[field]))
                     for field in FIELDS if getattr(row, field) != want[field]]
            if wrong:
                r.problem(M_("experiment {name}: {wrong} (block {block:,}): changed behind the tool's back", name=row.name, wrong=each_shown('; ', wrong), block=want['block']))
        for name in sorted(set(self.by_name) - seen):
            r.problem(M_("experiment {name} is missing: the chain recorded it in block {block:,}", name=name, block=self.by_name[name]['block']))


def check_variant_marks(tx) -> list[Problem]:
    """Every variant marker on an entry its experiment's terms give the variant, and on every such entry."""
    if not _has_table(tx):
        return []
    from loyalty_cli import experiments
    from loyalty_cli.store import experiments as rows

    found = experiments.load(tx)
    by_name = {e.name: e for e in found.all}
    problems: list[Problem] = []

    def problem(message: str, member_id: str | None) -> None:
        if len(problems) < LIMIT:
            problems.append(Problem(message, check="experiments", member_id=member_id))

    marked = {}
    for eid, name, member_id, at, kind in rows.marked_entries(tx):
        marked[eid] = name
        e = by_name.get(name)
        if member_id is None:
            problem(M_("entry {eid} is marked as earned under experiment {name} but there is no such entry", eid=eid, name=name), None)
        elif e is None:
            problem(M_("entry {eid} is marked as earned under experiment {name}, which does not exist", eid=eid, name=name), member_id)
        elif kind not in EARNED or not e.runs_on(at[:10]) or not e.in_variant(member_id):
            why = (M_("a {kind} entry is never earned under a variant", kind=kind) if kind not in EARNED else
                   M_("the experiment did not run on {at}", at=at[:10]) if not e.runs_on(at[:10]) else
                   M_("{member_id} is in its control group", member_id=member_id))
            problem(M_("entry {eid} is marked as earned under experiment {name}, but {why}: marker changed behind the tool's back", eid=eid, name=name, why=why), member_id)
    for e in found.all:
        end = (e.stops_on or "9999-12-31") + "T00:00:00"
        for eid, member_id, at, kind, _ref in rows.credits_between(tx, e.starts_on, end):
            if at[:10] >= (e.stops_on or "9999-12-31") or not e.in_variant(member_id):
                continue
            if marked.get(eid) != e.name:
                problem(M_("entry {eid} ({kind}, {at}) of {member_id}, in experiment {name}'s variant group, is not marked as earned under it: marker removed behind the tool's back", eid=eid, kind=kind, at=at[:10], member_id=member_id, name=e.name), member_id)
    return problems
