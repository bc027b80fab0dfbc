"""The ``ktrdr`` command line. Each command group lives in its own module."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ktrdr import __version__
from ktrdr.errors import TrainingError

Handler = Callable[[argparse.Namespace], int]

# What the [training] extra brings: a client-only installation has none of them.
TRAINING_EXTRA_MODULES = frozenset(
    {
        "torch",
        "talib",
        "numpy",
        "pandas",
        "sklearn",
        "pydantic",
        "pydantic_settings",
        "yaml",
        "safetensors",
        "grpc_reflection",
        "matplotlib",
        "pyarrow",
        "cryptography",
    }
)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples in each command's description as written."""


class _Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for a mistyped command or choice (every subparser is one
    of these: add_subparsers makes them of the parent's class)."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is None or value in choices:
            return
        import difflib

        names = [str(c) for c in choices]
        close = difflib.get_close_matches(str(value), names, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise argparse.ArgumentError(
            action, f"invalid choice: {value!r}{hint} (choose from {', '.join(names)})"
        )


# Options of every backend command that may also come before the command
# (``ktrdr --backend ADDR ops list``): moved behind it before parsing.
_CONNECTION_OPTIONS = {
    "--backend": True,  # takes a value
    "--token": True,
    "--timeout": True,
    "--tls-ca": True,
    "--tls-cert": True,
    "--tls-key": True,
    "--tls-server-name": True,
    "--tls": False,
    "--json": False,
}


def _global_options_last(argv: Sequence[str]) -> list[str]:
    """``--backend X ops list`` -> ``ops list --backend X``: connection options given before
    the command go after it, where each command's parser reads them."""
    moved: list[str] = []
    rest: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        name = item.split("=", 1)[0]
        if not item.startswith("-") or item == "--":
            rest += items[i:]
            break
        if name in _CONNECTION_OPTIONS:
            takes_value = _CONNECTION_OPTIONS[name] and "=" not in item
            moved += items[i : i + 1 + int(takes_value)]
            i += 1 + int(takes_value)
            continue
        rest.append(item)
        i += 1
    return rest + moved


def build_parser() -> argparse.ArgumentParser:
    from ktrdr.cli import local_commands

    parser = _Parser(
        prog="ktrdr",
        description="KTRDR training: train neuro-fuzzy strategies locally or through the "
        "backend/host gRPC services.\n\nexample:\n  ktrdr train "
        "examples/strategies/rsi_single.yaml --local",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"ktrdr {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more logging (-v INFO from the library, -vv DEBUG)",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an unexpected error"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    local_commands.register(sub, _Formatter)
    for register in _optional_registrars():
        register(sub, _Formatter)
    from ktrdr.cli import completion

    completion.register(sub, _Formatter)
    return parser


def _optional_registrars() -> list[Callable[..., None]]:
    """Command groups of the services and client (registered when their modules exist)."""
    import importlib

    out = []
    for module in (
        "ktrdr.cli.host_commands",
        "ktrdr.cli.backend_commands",
        "ktrdr.cli.client_commands",
        "ktrdr.cli.hosts_commands",
        "ktrdr.cli.model_commands",
        "ktrdr.cli.sweep_commands",
        "ktrdr.cli.certs_commands",
    ):
        try:
            out.append(importlib.import_module(module).register)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return out


def configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def quiet_grpc_logs(argv: Sequence[str]) -> None:
    """gRPC's C core prints lines of its own to stderr (``Handshake failed ...``); a client
    command says what went wrong in one line instead, so it turns them off before gRPC loads
    (the services, ``backend serve`` and ``host serve``, keep them). An explicit
    ``$GRPC_VERBOSITY`` wins."""
    serving = "serve" in argv and ("backend" in argv or "host" in argv)
    if not serving and "grpc" not in sys.modules:  # read once, when gRPC loads
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")


def main(argv: Sequence[str] | None = None) -> int:
    argv = _global_options_last(sys.argv[1:] if argv is None else argv)
    quiet_grpc_logs(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    configure_logging(args.verbose)
    try:
        return handler(args)
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in TRAINING_EXTRA_MODULES:
            raise
        print(
            f"error: `ktrdr {_command_name(args)}` needs the training library, which this "
            f"installation lacks (no module {exc.name!r}); install it with "
            "pip install 'ktrdr[training]'",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except Exception as exc:
        if args.debug:
            raise
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"error: {text} (ktrdr --debug ... shows the traceback)", file=sys.stderr)
        return 1


def _command_name(args: argparse.Namespace) -> str:
    """``strategy validate``, ``backend tokens create``: the command as typed, without options."""
    words = [args.command]
    prefix = args.command
    while isinstance(getattr(args, f"{prefix}_command", None), str):
        prefix = getattr(args, f"{prefix}_command")
        words.append(prefix)
    return " ".join(words)


def _quiet_broken_pipe() -> int:
    """The reader of stdout went away (``ktrdr ... | head``): exit quietly, as ``cat`` does."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # Python's flush at exit would fail again
    return 141


if __name__ == "__main__":
    sys.exit(main())
