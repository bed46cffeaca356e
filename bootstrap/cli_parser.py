"""The command line's arguments: the parser, the options several commands share, and
what they turn into (the manifest's load options). Parsing only: the commands and the
exit codes are in cli.py."""

from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bootstrap",
        description="Make an OpenStack cloud look exactly like a YAML manifest says.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check manifests offline (schema, references, graph)")
    p.add_argument("paths", nargs="+", metavar="FILE|DIR")
    p.add_argument("--format", choices=("text", "json"), default="text")
    add_input_options(p)
    p.add_argument(
        "--require-secrets",
        action="store_true",
        help="a secret whose env variable or file is missing is an error (default: a warning)",
    )

    p = sub.add_parser("graph", help="show the order apply walks, grouped by parallel stages")
    p.add_argument("paths", nargs="+", metavar="FILE|DIR")
    add_input_options(p)
    p.add_argument("--format", choices=("text", "dot", "mermaid"), default="text")

    for verb, text in (
        ("plan", "show what apply would change (a dry run against the live cloud)"),
        ("apply", "make the cloud match the manifest (or apply a saved plan.json)"),
    ):
        p = sub.add_parser(verb, help=text)
        p.add_argument("paths", nargs="+", metavar="FILE|DIR" + ("|PLAN.json" * (verb == "apply")))
        p.add_argument("--cloud", help="cloud name in clouds.yaml (default: $OS_CLOUD)")
        p.add_argument(
            "--prune",
            action="store_true",
            help="also delete resources marked with the stack that the manifest no longer "
            "lists (needs a stack)",
        )
        p.add_argument(
            "--stack",
            metavar="NAME",
            help="the stack whose markers the plan writes and prunes (default: the "
            "manifest's `stack:`)",
        )
        p.add_argument(
            "--adopt",
            action="store_true",
            help="take over declared resources another stack marked (re-marks them)",
        )
        p.add_argument(
            "--target",
            action="append",
            default=[],
            metavar="ADDRESS",
            help="plan only this resource and what it depends on (repeatable, globs: "
            "'servers.acme/*'); the plan lists what was pulled in and why",
        )
        p.add_argument("-v", "--verbose", action="store_true", help="log API retries")
        add_input_options(p)
        add_destroy_gate(p)
        add_retry_options(p)
    p = sub.add_parser("export", help="write a manifest of what the cloud has (by name)")
    p.add_argument("--cloud", help="cloud name in clouds.yaml (default: $OS_CLOUD)")
    p.add_argument("--project", action="append", default=[], metavar="NAME",
                   help="export this project and what lives in it (repeatable)")
    p.add_argument("--domain", action="append", default=[], metavar="NAME",
                   help="export this domain and what is in it; with --project: the "
                   "projects' domain (repeatable)")
    p.add_argument("--kind", action="append", default=[], metavar="KIND",
                   help="export only these kinds; others referenced become lookups (repeatable)")
    p.add_argument("--stack", metavar="NAME", help="write `stack: NAME` into the manifest")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    p.add_argument("-v", "--verbose", action="store_true", help="log API retries")
    add_retry_options(p)
    plan_p, apply_p = sub.choices["plan"], sub.choices["apply"]
    plan_p.add_argument(
        "--format",
        choices=("text", "json", "markdown"),
        default="text",
        help="json: schemas/plan.schema.json; markdown: a merge-request comment",
    )
    plan_p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when there are no changes, 2 when there are, 1 on error",
    )
    apply_p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when the cloud now matches, 2 when changes were held back, 1 on error",
    )
    plan_p.add_argument("--out", metavar="PLAN.json", help="save the plan for `apply PLAN.json`")
    plan_p.add_argument(
        "--timings",
        action="store_true",
        help="show where the time went: imports, libraries, load, graph, connect, reads "
        "(each kind), "
        "probes, diff, total (the JSON plan always carries them)",
    )
    apply_p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    apply_p.add_argument(
        "--summary-json",
        metavar="FILE",
        help="write counts, durations, failures and the exit code there, whatever the "
        "outcome (schemas/summary.schema.json)",
    )
    apply_p.add_argument(
        "--parallelism",
        type=int,
        default=None,
        metavar="N",
        help="changes made at once (default: adaptive per service, from 8: grows while the "
        "service's latency holds, shrinks when it rises or on 429/503)",
    )
    return parser


def add_input_options(p: argparse.ArgumentParser) -> None:
    """Environment layers and variable values (see README: Variables, repetition and
    environments)."""
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="FILE|DIR",
        help="an environment laid over the manifest: its resources change or add to the "
        "base's by address (repeatable, in order)",
    )
    p.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable's value (repeatable; wins over --var-file, BOOTSTRAP_VAR_NAME, default)",
    )
    p.add_argument(
        "--var-file",
        action="append",
        default=[],
        metavar="FILE",
        help="YAML file of variable values (repeatable, later wins)",
    )


def load_options(args: argparse.Namespace, offline: bool = False):
    from bootstrap.manifest import LoadOptions

    warn = offline and not getattr(args, "require_secrets", False)
    return LoadOptions(
        env=tuple(args.env),
        var_args=tuple(args.var),
        var_files=tuple(args.var_file),
        missing_secrets="warn" if warn else "error",
    )


class _Version(argparse.Action):
    """--version, looked up only when asked for: reading the installed distributions'
    metadata costs about 50 ms, every run."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog} {package_version()}")  # on stdout, as argparse's own
        parser.exit()


def package_version() -> str:
    """The installed distribution's version (what pip installed), not a copy in code."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("openstack-bootstrap")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def add_destroy_gate(p: argparse.ArgumentParser) -> None:
    """--allow-destroy [ADDRESS]: plan shows, and apply runs, what it allows."""
    p.add_argument(
        "--allow-destroy",
        action="append",
        nargs="?",
        const="*",
        default=[],
        metavar="ADDRESS",
        help="allow changes that destroy data (a replace, a server rebuild or resize): "
        "all of them, or those whose address matches (repeatable, globs: 'servers.acme/*'); "
        "without it they and what depends on them are held back, the rest is applied",
    )


def add_retry_options(p: argparse.ArgumentParser) -> None:
    from bootstrap.retry import DEFAULT_BUDGET

    p.add_argument(
        "--retry-budget",
        type=float,
        default=DEFAULT_BUDGET,
        metavar="SECONDS",
        help="time one resource's requests may spend retrying transient errors "
        f"({DEFAULT_BUDGET:g})",
    )
