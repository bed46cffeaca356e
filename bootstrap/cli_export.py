"""`bootstrap export`: a manifest from a live cloud, written out, and what it needs
reported. The exit code is picked in cli.py."""

from __future__ import annotations

import argparse
import sys

from bootstrap.cli_console import console, setup_logging


def run_export(args: argparse.Namespace) -> None:
    """The manifest on stdout (or -o FILE); what it needs and left out on stderr.
    A BootstrapError (no cloud, a refused read) is raised for cli.py to report."""
    from bootstrap import engine
    from bootstrap.cloud import Cloud
    from bootstrap.export import Scope
    from bootstrap.retry import RetryPolicy

    setup_logging(args.verbose)
    scope = Scope(tuple(args.project), tuple(args.domain), tuple(args.kind))
    cloud = Cloud.connect(args.cloud, retry=RetryPolicy(budget=args.retry_budget))
    result = engine.export(cloud, scope, args.stack)
    text = result.to_yaml()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    err = console(stderr=True)
    counts = {k: len(v) for k, v in result.document.items() if isinstance(v, list)}
    written = sum(counts.values()) - len(result.lookups)
    err.print(
        f"Exported {written} resources and {len(result.lookups)} lookups (managed: false) "
        f"from {result.requests} API requests in {result.read_seconds:.2f} s"
        + (f" to {args.output}" if args.output else "") + ".",
        markup=False,
    )
    if result.lookups:
        err.print("Looked up, outside the scope: " + ", ".join(result.lookups), markup=False)
    if result.env:
        err.print("Set these environment variables before plan/apply (secrets):", markup=False)
        for name, what in result.env.items():
            err.print(f"  {name}  ({what})", markup=False)
    if result.not_exported:
        err.print("Not exported (no export support): " + ", ".join(result.not_exported),
                  markup=False)
    for w in result.warnings:
        err.print(f"warning: {w}", markup=False)
