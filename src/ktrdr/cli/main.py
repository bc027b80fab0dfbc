"""The ``ktrdr`` command line. Each command group lives in its own module."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

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


def build_parser() -> argparse.ArgumentParser:
    from ktrdr.cli import local_commands

    parser = argparse.ArgumentParser(
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
    if not serving:
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")


def main(argv: Sequence[str] | None = None) -> int:
    quiet_grpc_logs(sys.argv[1:] if argv is None else argv)
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
