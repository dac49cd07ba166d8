"""The pieces of one engine transition, each timed alone and without a profiler.

    .venv/bin/python bench/pieces.py

``bench/transition.py`` says how much slower a transition is than the same SQL by hand;
``bench/profile_transition.py`` says which layer the time is in, but a profiler inflates
Python code. This times each piece ``projects.fire`` is made of, on SQLite, with ``timeit``,
next to its hand-written counterpart where there is one, so the gap can be added up:

* the write transaction itself (``Zizhi.change``: BEGIN IMMEDIATE, commit of nothing);
* one Core statement (the project lock) against the same SQL on the ``sqlite3`` cursor;
* turning the locked row into a ``ProjectRecord``; deciding the step; hashing an event;
  serialising the details; building the ``ProjectView`` returned to the caller.
"""

from __future__ import annotations

import argparse
import json
import statistics
import timeit
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from common import describe_environment, open_projects, open_site, sqlite_url
from raw import SQL, RawWriter, canonical_json

from engine.model import ProjectRecord
from engine.store.history import canonical_json as engine_canonical_json
from engine.store.history import event_hash
from engine.store.uow import LOCK_PROJECT as _LOCK
from engine.usecases.projects import _Facts, _view


def measure(call: Callable[[], object]) -> float:
    """Median µs per call over seven timed loops of at least 0.2 s each."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    return statistics.median(t / number * 1e6 for t in timer.repeat(repeat=7, number=number))


def pieces() -> list[tuple[str, float, float | None]]:
    rows: list[tuple[str, float, float | None]] = []
    with sqlite_url() as url:
        site = open_site(url)
        (project_id,) = open_projects(site, "c1", 1)
        z, committee = site.z, site.committee
        raw = RawWriter.sqlite(
            url.removeprefix("sqlite:///"),
            actor=committee.id,
            role=committee.role.value,
            communities=committee.communities,
        )
        try:

            def empty_change() -> None:
                with z.db.write() as conn:
                    conn.commit()

            def empty_raw() -> None:
                raw.conn.execute("BEGIN IMMEDIATE")
                raw.conn.execute("COMMIT")

            rows.append(
                ("write transaction, nothing written", measure(empty_change), measure(empty_raw))
            )

            with z.change(committee, project=project_id) as change:
                conn = change.conn
                cursor = conn.connection.driver_connection.cursor()
                params = {"project": project_id}
                rows.append(
                    (
                        "lock project row (one statement)",
                        measure(lambda: conn.execute(_LOCK, params).first()),
                        measure(
                            lambda: cursor.execute(SQL["lock_project"], (project_id,)).fetchone()
                        ),
                    )
                )
                row = conn.execute(_LOCK, params).first()
                record = ProjectRecord.from_row(row)
                wf = z.workflows.get(record.workflow, record.workflow_version)
                facts = _Facts(change, record)
                rows.append(
                    ("row → ProjectRecord", measure(lambda: ProjectRecord.from_row(row)), None)
                )
                rows.append(
                    (
                        "Workflow.decide (cancel)",
                        measure(
                            lambda: wf.decide(
                                record.state, "cancel", committee.role, {"reason": "撤销"}, facts
                            )
                        ),
                        None,
                    )
                )
            at = datetime.now(UTC)
            data = {
                "action": "cancel",
                "from": "planning",
                "to": "cancelled",
                "fields": {"reason": "撤销"},
            }

            def hash_event(dump: Callable[[Any], str]) -> Callable[[], str]:
                def run() -> str:
                    return event_hash(
                        chain="c1",
                        seq=42,
                        at=at,
                        actor="token:bench",
                        role="committee",
                        community_id="c1",
                        project_id=1,
                        type="project.transitioned",
                        data=dump(data),
                        prev_hash="0" * 64,
                    )

                return run

            rows.append(
                (
                    "event JSON + sha256 (both sides do it)",
                    measure(hash_event(engine_canonical_json)),
                    measure(hash_event(canonical_json)),
                )
            )
            details = {"cancel": {"reason": "撤销"}}
            rows.append(
                (
                    "details → JSON (both sides do it)",
                    measure(lambda: json.dumps(details, ensure_ascii=False)),
                    measure(lambda: json.dumps(details, ensure_ascii=False)),
                )
            )
            rows.append(
                ("ProjectView for the caller", measure(lambda: _view(record, wf, committee)), None)
            )
        finally:
            raw.close()
            site.close()
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    print(f"# {describe_environment(postgresql=False)}")
    rows = pieces()
    width = max(len(label) for label, _, _ in rows)
    print(f"{'piece':<{width}} {'engine µs':>10} {'by hand µs':>11}")
    print("-" * (width + 23))
    for label, engine, raw in rows:
        by_hand = f"{raw:>11.1f}" if raw is not None else f"{'—':>11}"
        print(f"{label:<{width}} {engine:>10.1f} {by_hand}")


if __name__ == "__main__":
    main()
