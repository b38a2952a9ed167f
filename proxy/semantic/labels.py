"""Feedback kept as labelled pairs, so an operator can export them and retrain the verifier.

Every verdict on ``POST /admin/cache/feedback`` (``wrong``: the stored prompt's answer did not answer the
asked prompt, label 0; ``right``: it did, label 1) is one row of ``DATA_DIR/semantic-feedback.sqlite3``.
What a row keeps is ``FEEDBACK_KEEP_TEXT``'s choice, because prompts are user data:

- ``false`` (the default): a hash of each prompt (the tier's ``text_hash``: enough to count, to deduplicate,
  and to find a pair again in logs that have the text), never the text;
- ``true``: the two prompts as they were, so the rows are training data as they stand.

``cachegate semantic export-feedback`` writes them as JSON lines in the shape ``bench/verifier`` trains on
(``{id, group, source: "feedback", family, label, a: stored, b: asked, split: ""}``); rows without text
carry the hashes in ``a_hash``/``b_hash`` instead.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from proxy.platform.sqlite import Database, Migration

FILENAME = "semantic-feedback.sqlite3"
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "labelled feedback pairs", (
        """CREATE TABLE feedback (
               id INTEGER PRIMARY KEY,
               at REAL NOT NULL,
               verdict TEXT NOT NULL,
               label INTEGER NOT NULL,
               scope TEXT NOT NULL,
               stored_sha256 TEXT NOT NULL,
               asked_sha256 TEXT NOT NULL,
               stored_text TEXT,
               asked_text TEXT
           )""",
    )),
)


class FeedbackLabels:
    def __init__(self, path: Path, *, keep_text: bool) -> None:
        self.keep_text = keep_text
        self.database = Database(path, MIGRATIONS)

    async def open(self) -> None:
        await self.database.open()

    async def close(self) -> None:
        await self.database.close()

    async def record(self, verdict: str, *, scope: str, stored_hash: str, asked_hash: str,
                     stored_text: str | None = None, asked_text: str | None = None, now: float | None = None) -> None:
        """One verdict; the texts are written only with ``keep_text`` (the hashes always)."""
        keep = self.keep_text and stored_text is not None and asked_text is not None
        row = (time.time() if now is None else now, verdict, 1 if verdict == "right" else 0, scope, stored_hash,
               asked_hash, stored_text if keep else None, asked_text if keep else None)

        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("INSERT INTO feedback (at, verdict, label, scope, stored_sha256, asked_sha256, "
                             "stored_text, asked_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)

        await self.database.run(write)


def export(path: Path) -> list[dict[str, Any]]:
    """Every row of the feedback file at ``path`` as a training pair (read only; no file: nothing)."""
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT id, at, verdict, label, scope, stored_sha256, asked_sha256, stored_text, "
                            "asked_text FROM feedback ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # created, never migrated
        return []
    finally:
        conn.close()
    out = []
    for row_id, at, verdict, label, scope, stored_sha, asked_sha, stored, asked in rows:
        pair: dict[str, Any] = {"id": f"feedback-{row_id}", "group": f"feedback-{scope[:16]}-{stored_sha[:16]}",
                                "source": "feedback", "family": f"feedback_{verdict}", "label": int(label),
                                "a": stored, "b": asked, "split": "", "at": at}
        if stored is None or asked is None:
            pair.update(a_hash=stored_sha, b_hash=asked_sha)
        out.append(pair)
    return out
