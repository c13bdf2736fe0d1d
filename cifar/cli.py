"""The ``cifar`` command line: one sub-command per module in ``cifar/commands/``."""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

# (sub-command, module in cifar.commands); each module has add_arguments(parser) and run(args).
COMMANDS = [
    ("data", "data"),
    ("audit", "audit"),
    ("train", "train"),
    ("compare", "compare"),
    ("evaluate", "evaluate"),
    ("report", "report"),
    ("export", "export"),
    ("predict", "predict"),
    ("explain", "explain"),
    ("serve", "serve"),
]

# OSErrors the user fixes by freeing space or choosing another folder.
DISK_ERRNOS = (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EDQUOT)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="cifar",
        description="Image classification by transfer learning for any photo set (class folders "
        "or CIFAR-10): train, evaluate, export, serve.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS:
        module = importlib.import_module(f"cifar.commands.{module_name}")
        doc = (module.__doc__ or "").strip().splitlines()
        cmd = sub.add_parser(name, help=doc[0] if doc else None, description=module.__doc__)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cifar`` console script; user errors print one line, exit 2."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from cifar.errors import CifarError, DiskError

    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except CifarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        # Last resort for a write no module wrapped in cifar.errors.writing: a full disk, a
        # read-only or forbidden folder is the user's to fix, not a traceback.
        if exc.errno not in DISK_ERRNOS:
            raise
        reason = exc.strerror or str(exc)
        print(
            f"error: {DiskError.at(exc.filename or 'a file', reason, action='use')}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
