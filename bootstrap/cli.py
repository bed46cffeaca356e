"""Command line: parse, call the engine, render. The ONLY place that picks exit codes.

Exit codes: 0 success (plan: no changes), 1 error, 2 changes present (plan with
--detailed-exitcode).
"""

from __future__ import annotations

import argparse
import sys

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bootstrap",
        description="Make an OpenStack cloud look exactly like a YAML manifest says.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check manifests offline (schema, references, graph)")
    p.add_argument("paths", nargs="+", metavar="FILE|DIR")
    p.add_argument("--format", choices=("text", "json"), default="text")

    p = sub.add_parser("graph", help="show the order apply walks, grouped by parallel stages")
    p.add_argument("paths", nargs="+", metavar="FILE|DIR")
    p.add_argument("--format", choices=("text", "dot", "mermaid"), default="text")

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = COMMANDS[args.command]
    return handler(args)


def cmd_validate(args: argparse.Namespace) -> int:
    raise NotImplementedError


def cmd_graph(args: argparse.Namespace) -> int:
    raise NotImplementedError


COMMANDS = {
    "validate": cmd_validate,
    "graph": cmd_graph,
}


if __name__ == "__main__":
    sys.exit(main())
