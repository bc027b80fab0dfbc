"""``ktrdr certs create``: a CA, service and client certificates, and the settings using them."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path(".ktrdr/certs")

DESCRIPTION = """\
Make a CA (once; reused when DIR has one) and certificates it signs, then print the
flags and environment variables that use them. Keys are EC P-256, mode 0600.

A service certificate (--service NAME=HOST[,HOST...]) names every address the service is
reached by (DNS names and IPs, in its subjectAltName) and serves as both server and
client certificate (a backend presents its own to its hosts, a host its own to the
backend). A client certificate (--client NAME) is for a user or a notebook.
Without --service and --client: one service `localhost` (127.0.0.1, localhost) and one
client `client`, for trying mTLS on one machine.

examples:
  ktrdr certs create --dir /etc/ktrdr/pki --service backend=backend.lan,10.0.0.2 \\
      --service gpu1=gpu1.lan --client alice
  ktrdr certs create --dir pki --client bob          # one more user, same CA
"""


def register(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    certs = sub.add_parser(
        "certs", help="make TLS certificates (a CA, services, clients)", formatter_class=formatter
    )
    certs_sub = certs.add_subparsers(dest="certs_command", metavar="COMMAND", required=True)
    create = certs_sub.add_parser(
        "create",
        help="a CA and certificates it signs, with the flags to use them",
        description=DESCRIPTION,
        formatter_class=formatter,
    )
    create.add_argument(
        "--dir", type=Path, default=DEFAULT_DIR, help=f"where to write them ({DEFAULT_DIR})"
    )
    create.add_argument(
        "--service",
        action="append",
        default=[],
        metavar="NAME=HOST[,HOST...]",
        help="a service certificate NAME.pem for these DNS names and IPs (repeatable)",
    )
    create.add_argument(
        "--client", action="append", default=[], metavar="NAME", help="a client certificate"
    )
    create.add_argument("--days", type=int, default=365, help="validity of the certificates")
    create.add_argument("--force", action="store_true", help="replace certificates of that name")
    create.set_defaults(handler=_create)


def _services(specs: list[str]) -> list[tuple[str, list[str]]]:
    out = []
    for spec in specs:
        name, sep, hosts = spec.partition("=")
        names = [h.strip() for h in hosts.split(",") if h.strip()]
        if not sep or not name.strip() or not names:
            raise ValueError(
                f"--service {spec!r}: expected NAME=HOST[,HOST...], e.g. gpu1=gpu1.lan"
            )
        out.append((name.strip(), names))
    return out


def _create(args: argparse.Namespace) -> int:
    from ktrdr.security.certs import CertError, issue, load_or_make_ca

    if args.days < 1:
        print("error: --days must be at least 1", file=sys.stderr)
        return 2
    try:
        services = _services(args.service)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    clients = list(args.client)
    if not services and not clients:
        services, clients = [("localhost", ["127.0.0.1", "localhost"])], ["client"]
    directory = args.dir.expanduser().resolve()
    try:
        ca, made = load_or_make_ca(directory)
        print(f"{'made' if made else 'using'} CA {ca.cert} (key {ca.key.name}, mode 0600)")
        for name, hosts in services:
            cert = issue(ca, name, hosts=hosts, days=args.days, force=args.force)
            print(f"made service certificate {cert.cert} for {', '.join(hosts)}")
        for name in clients:
            cert = issue(ca, name, service=False, days=args.days, force=args.force)
            print(f"made client certificate {cert.cert}")
    except CertError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print_usage(directory, ca.cert, [n for n, _ in services], clients)
    return 0


def _print_usage(directory: Path, ca: Path, services: list[str], clients: list[str]) -> None:
    def q(path: Path) -> str:
        return shlex.quote(str(path))

    print()
    for name in services:
        pem, key = directory / f"{name}.pem", directory / f"{name}.key"
        flags = f"--tls-cert {q(pem)} --tls-key {q(key)} --tls-ca {q(ca)} --tls-require-client-cert"
        print(f"# a service with {name}.pem (mTLS: only certificates of this CA get in)")
        print(f"ktrdr backend serve ... {flags}")
        print(f"export KTRDR_BACKEND_HOST_TLS_CA={q(ca)}   # the backend verifies its hosts")
        print(f"ktrdr host serve ... {flags}")
        print(f"export KTRDR_HOST_BACKEND_TLS_CA={q(ca)}   # the host verifies its backend")
        print()
    for name in clients:
        pem, key = directory / f"{name}.pem", directory / f"{name}.key"
        print(f"# a client with {name}.pem (ktrdr, TrainingClient)")
        print(f"export KTRDR_TLS_CA={q(ca)} KTRDR_TLS_CERT={q(pem)} KTRDR_TLS_KEY={q(key)}")
        print(f"#   or: ktrdr ... --tls-ca {q(ca)} --tls-cert {q(pem)} --tls-key {q(key)}")
        print()
    print(
        "Connect by a name or IP the service certificate lists, or set --tls-server-name "
        "($KTRDR_TLS_SERVER_NAME). Keep ca.key off the services' machines."
    )
