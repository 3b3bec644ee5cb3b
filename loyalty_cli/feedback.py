"""Customer feedback: a member's 0–10 "would you recommend us?" score, for the dashboard's NPS.

Scores are kept per answer (a member may answer again later; the NPS uses each
member's latest in the 365 days to the as-of date). A comment is the member's
own words, so it is personal data: `members erase` deletes it.
"""

from __future__ import annotations

from loyalty_cli.errors import UsageError
from loyalty_cli.ids import active_member
from loyalty_cli.store import feedback as feedback_rows
from loyalty_cli.i18n import M_, _


def add(store, member_id: str, score: int, at: str, comment: str | None = None) -> dict:
    """Record one score (0–10) from an existing, not erased member; return the stored answer."""
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        raise UsageError(M_("a score must be a whole number from 0 to 10, got {score!r}", score=score))
    if comment is not None:
        from loyalty_cli import values

        comment = comment.strip() and values.checked(values.parse_text, comment, "--comment", 2000, "\t\n",
                                                     message=_("--comment must be at most 2000 characters without control characters"))
        comment = comment or None
    with store.write() as tx:
        member_id = active_member(tx, member_id)
        answer_id = feedback_rows.insert(tx, member_id, at, score, comment)
    return {"id": answer_id, "member_id": member_id, "at": at, "score": score, "comment": comment}
