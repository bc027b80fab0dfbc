"""``ktrdr hosts list``: the training hosts the backend may use (Backend.ListHosts)."""

from __future__ import annotations

import argparse
from typing import Any

from ktrdr.cli.client_commands import (
    _client,
    _connection_options,
    _handles_errors,
    _json_option,
    _print_json,
    _table,
)


def register(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    conn, js = _connection_options(), _json_option()
    hosts = sub.add_parser(
        "hosts",
        help="training hosts the backend may use",
        formatter_class=formatter,
        description="Training hosts the backend may use.\n\nexample:\n  ktrdr hosts list",
    )
    hsub = hosts.add_subparsers(dest="hosts_command", metavar="COMMAND", required=True)
    p = hsub.add_parser(
        "list",
        parents=[conn, js],
        help="every host, static and registered, with state, load and last heartbeat",
        formatter_class=formatter,
        description="Every host the backend may use: those listed with --host-address\n"
        "(state static, asked now) and those that registered themselves (ktrdr host serve\n"
        "--backend; available or unavailable), with load, last heartbeat and version.\n\n"
        "example:\n  ktrdr hosts list --json",
    )
    p.set_defaults(handler=_handles_errors(_hosts_list))


def _hosts_list(args: argparse.Namespace) -> int:
    hosts = _client(args).hosts()
    if args.json:
        _print_json([h.to_dict() for h in hosts])
        return 0
    if not hosts:
        print("no hosts (list them with --host-address, or start: ktrdr host serve --backend ...)")
        return 0
    _table(
        ["HOST_ID", "ADDRESS", "STATE", "LOAD", "DEVICE", "VERSION", "LAST_HEARTBEAT", "DETAIL"],
        [
            [
                h.host_id or "-",
                h.address,
                h.state,
                f"{h.active_sessions}/{h.max_sessions}",
                h.device_name or h.device or "-",
                h.version or "-",
                h.last_heartbeat.strftime("%H:%M:%S") if h.last_heartbeat else "-",
                h.detail,
            ]
            for h in hosts
        ],
    )
    return 0
