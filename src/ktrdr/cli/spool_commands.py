"""``ktrdr host spool list|resend``: the models a host keeps until its backend has them.

Works on the spool directory itself (``--spool-dir``, else ``KTRDR_HOST_SPOOL_DIR``), so it
also works while the host is stopped. A resent model is delivered by a running host at its
next spool scan (``KTRDR_HOST_SPOOL_SCAN_INTERVAL_S``), by a stopped one when it starts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(hsub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    spool = hsub.add_parser(
        "spool",
        help="list the models waiting for delivery or parked, and resend parked ones",
        formatter_class=formatter,
        description="Models a host keeps until its backend acknowledges them. 'waiting' ones\n"
        "are being delivered (retried until the backend answers); 'parked' ones were refused\n"
        "for good (the reason is shown, and the backend's operation shows it too).\n\n"
        "examples:\n  ktrdr host spool list --spool-dir /var/lib/ktrdr/spool\n"
        "  ktrdr host spool resend 3f2a... --spool-dir /var/lib/ktrdr/spool\n"
        "  ktrdr host spool resend --all",
    )
    ssub = spool.add_subparsers(dest="spool_command", metavar="COMMAND", required=True)
    listing = ssub.add_parser("list", help="waiting and parked models", formatter_class=formatter)
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    resend = ssub.add_parser(
        "resend", help="deliver parked models again", formatter_class=formatter
    )
    resend.add_argument("session_ids", nargs="*", metavar="SESSION", help="sessions to resend")
    resend.add_argument("--all", action="store_true", help="resend every parked model")
    for parser in (listing, resend):
        parser.add_argument("--spool-dir", type=Path, default=None, help="the host's spool")
    listing.set_defaults(handler=_list)
    resend.set_defaults(handler=_resend)


def _spool(args: argparse.Namespace) -> Any:
    from ktrdr_host.settings import HostSettings
    from ktrdr_host.spool import Spool

    directory = args.spool_dir or HostSettings().spool_dir
    if not directory.is_dir():
        print(f"error: no spool directory at {directory} (see --spool-dir)", file=sys.stderr)
        return None
    return Spool(directory)


def _list(args: argparse.Namespace) -> int:
    spool = _spool(args)
    if spool is None:
        return 1
    rows: list[dict[str, Any]] = [
        _row(entry, "waiting", "") for entry in spool.entries(cleanup=False)
    ]
    rows += [_row(entry, "parked", why, at) for entry, why, at in spool.parked()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no models in {spool.directory}")
        return 0
    for row in rows:
        line = (
            f"{row['state']:<8} {row['session_id']}  {row['strategy']}  "
            f"{row['size_bytes']} bytes  to {row['target']}  spooled {row['spooled']}"
        )
        print(line)
        if row["reason"]:
            print(f"         parked {row['parked']}: {row['reason']}")
    return 0


def _row(entry: Any, state: str, reason: str, parked: str = "") -> dict[str, Any]:
    return {
        "state": state,
        "session_id": entry.session_id,
        "strategy": entry.strategy_name,
        "target": entry.results_target,
        "size_bytes": entry.size_bytes,
        "sha256": entry.sha256,
        "spooled": entry.created_at,
        "parked": parked,
        "reason": reason,
    }


def _resend(args: argparse.Namespace) -> int:
    spool = _spool(args)
    if spool is None:
        return 1
    wanted = list(args.session_ids)
    if args.all:
        wanted += [entry.session_id for entry, _, _ in spool.parked()]
    if not wanted:
        print("error: name the sessions to resend, or --all", file=sys.stderr)
        return 2
    status = 0
    for session_id in dict.fromkeys(wanted):
        try:
            spool.resend(session_id)
        except (LookupError, OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"resending {session_id} (a running host picks it up at its next spool scan)")
    return status
