"""Feedback rows: a member's 0-10 scores and their comments."""

from __future__ import annotations


def insert(tx, member_id: str, at: str, score: int, comment: str | None) -> int:
    """Record one answer; returns its id."""
    tx.journal.add("feedback", (member_id, at, score))  # the comment is personal data: not chained
    return tx.execute("INSERT INTO feedback (member_id, at, score, comment) VALUES (?, ?, ?, ?) RETURNING id",
                      (member_id, at, score, comment)).fetchone()[0]


def forget_comments(tx, member_id: str) -> None:
    """Delete the member's comments (their own words: personal data); the scores stay for the NPS."""
    tx.execute("UPDATE feedback SET comment = NULL WHERE member_id = ?", (member_id,))
