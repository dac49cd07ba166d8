#!/usr/bin/env python3
"""Check a Zizhi history export (JSON Lines) on its own, with the standard library only.

    python3 verify_export.py events.jsonl [--partial]

Written from docs/history-format.md alone: every event's hash is recomputed from its fields,
and along each chain every event must follow the one before it (seq one more, prev_hash its
hash), the first event of a chain linking to the chain's genesis value. Exit 0 and one line
"OK …" if everything holds; exit 1 naming the first fault (line number, chain, seq).

``--partial``: the export was filtered (by type, project, dates…), so chains may start
after their first event or skip events; each event's own hash is still checked, and links
wherever two consecutive events of a chain are both present.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable
from typing import Any

FIELDS = ("id", "chain", "seq", "at", "actor", "role", "community_id", "project_id")
FIELDS += ("type", "data", "prev_hash", "hash")


def canonical(value: Any) -> str:
    """Canonical JSON: keys sorted by code point, no spaces, non-ASCII as itself (UTF-8)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def genesis(chain: str) -> str:
    return hashlib.sha256(f"zizhi:{chain}".encode()).hexdigest()


def event_hash(event: dict[str, Any]) -> str:
    framed = [
        event["chain"],
        event["seq"],
        event["at"],
        event["actor"],
        event["role"],
        event["community_id"],
        event["project_id"],
        event["type"],
        canonical(event["data"]),  # data is a string inside the array: encoded twice
        event["prev_hash"],
    ]
    return hashlib.sha256(canonical(framed).encode("utf-8")).hexdigest()


class Fault(Exception):
    pass


def check(lines: Iterable[str], *, partial: bool = False) -> tuple[int, int]:
    """(events, chains) checked; raises Fault naming the first problem."""
    last: dict[str, tuple[int, str]] = {}  # chain → (seq, hash) of its latest event
    count = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise Fault(f"line {number}: not JSON ({exc})") from None
        if not isinstance(event, dict) or (missing := [f for f in FIELDS if f not in event]):
            raise Fault(f"line {number}: not an event (missing {', '.join(missing or FIELDS)})")
        chain, seq = event["chain"], event["seq"]
        where = f"line {number} (chain {chain}, seq {seq}, event {event['id']})"
        if event_hash(event) != event["hash"]:
            raise Fault(f"{where}: the hash does not match the event's content")
        before = last.get(chain)
        if before is None:
            if seq == 1 and event["prev_hash"] != genesis(chain):
                raise Fault(f"{where}: the first event does not link to the chain's genesis")
            if seq != 1 and not partial:
                raise Fault(f"{where}: the chain starts at seq {seq}, not 1")
        elif seq == before[0] + 1:
            if event["prev_hash"] != before[1]:
                raise Fault(f"{where}: prev_hash is not the hash of seq {before[0]}")
        elif seq <= before[0] or not partial:
            raise Fault(f"{where}: follows seq {before[0]} of its chain (missing or out of order)")
        last[chain] = (seq, event["hash"])
        count += 1
    return count, len(last)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a Zizhi JSON Lines history export.")
    parser.add_argument("export", help="the .jsonl file (- for standard input)")
    parser.add_argument("--partial", action="store_true", help="the export was filtered")
    args = parser.parse_args(argv)
    stream = sys.stdin if args.export == "-" else open(args.export, encoding="utf-8")  # noqa: SIM115
    try:
        with stream:
            events, chains = check(stream, partial=args.partial)
    except Fault as fault:
        print(f"FAILED: {fault}")
        return 1
    print(f"OK: {events} events in {chains} chains; every hash and link holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
