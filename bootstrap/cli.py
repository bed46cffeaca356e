"""Command line: parse, call the engine, render. The ONLY place that picks exit codes.

Exit codes: 0 success (plan: no changes), 1 error, 2 with --detailed-exitcode: plan —
changes present; apply — changes held back (destructive without --allow-destroy), the
cloud still differs from the manifest. Like Terraform, a plain apply that did everything
it was allowed to do exits 0 even when it held changes back: holding back is the policy
working, not a failure; timers that must notice pass --detailed-exitcode.
130: interrupted (SIGINT/SIGTERM), after a summary of what was done.
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bootstrap",
        description="Make an OpenStack cloud look exactly like a YAML manifest says.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
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
        _add_retry_options(p)
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
    _add_retry_options(p)
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
        help="show where the time went: imports, load, connect, reads (each kind), "
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


def _add_retry_options(p: argparse.ArgumentParser) -> None:
    from bootstrap.retry import DEFAULT_BUDGET

    p.add_argument(
        "--retry-budget",
        type=float,
        default=DEFAULT_BUDGET,
        metavar="SECONDS",
        help="time one resource's requests may spend retrying transient errors "
        f"({DEFAULT_BUDGET:g})",
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_destroy_patterns(parser, args)
    handler = COMMANDS[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        # Before apply writes anything (reading, asking): nothing changed.
        print("\ninterrupted: nothing was changed.", file=sys.stderr)
        return EXIT_INTERRUPTED


def _load_and_graph(paths: list[str], options):
    """Manifest, dependency graph (None when unusable) and every diagnostic of both."""
    from bootstrap import graph as graph_mod
    from bootstrap import manifest as manifest_mod

    manifest, diagnostics = manifest_mod.load(paths, options=options)
    g = None
    if manifest is not None:
        g, more = graph_mod.build(manifest)
        diagnostics = diagnostics + more
    return manifest, g, diagnostics


def cmd_validate(args: argparse.Namespace) -> int:
    """Offline check: schema, references, secrets, cycles. Exit 1 on any error."""
    from bootstrap import render
    from bootstrap.model import mask_secrets

    manifest, _g, diagnostics = _load_and_graph(args.paths, load_options(args, offline=True))
    resources = len(manifest) if manifest is not None else 0
    files = len(manifest.files) if manifest is not None else 0
    if args.format == "json":
        text = render.validate_json(diagnostics, resources)
    else:
        text = render.validate_text(diagnostics, resources, files)
    print(mask_secrets(text, manifest.secrets() if manifest is not None else []))
    return EXIT_ERROR if any(d.is_error for d in diagnostics) else EXIT_OK


def cmd_graph(args: argparse.Namespace) -> int:
    """Stages (text) or the graph (dot, mermaid) on stdout; diagnostics on stderr."""
    from bootstrap import graph as graph_mod
    from bootstrap import render
    from bootstrap.model import mask_secrets

    manifest, g, diagnostics = _load_and_graph(args.paths, load_options(args, offline=True))
    secrets = manifest.secrets() if manifest is not None else []
    if diagnostics:
        text = render.diagnostics_text(diagnostics)
        print(mask_secrets(text, secrets), file=sys.stderr)
    if g is None or any(d.is_error for d in diagnostics):
        resources = len(manifest) if manifest is not None else 0
        files = len(manifest.files) if manifest is not None else 0
        print(render.validate_summary(diagnostics, resources, files), file=sys.stderr)
        return EXIT_ERROR
    stages = graph_mod.stages(g)
    draw = {"text": render.graph_text, "dot": render.graph_dot, "mermaid": render.graph_mermaid}
    print(mask_secrets(draw[args.format](g, stages), secrets))
    return EXIT_OK


def _console(stderr: bool = False):
    from rich.console import Console

    # soft_wrap: a plan piped to a file or a CI log keeps one field per line.
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _setup_logging(verbose: bool) -> None:
    import logging

    # Client libraries log request bodies at DEBUG: never go below INFO.
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    if not verbose:
        # keystoneauth warns "Failed to discover available identity versions" before the
        # one error that names the unreachable endpoint (Cloud.authenticate).
        logging.getLogger("keystoneauth").setLevel(logging.ERROR)


def _plan_from_args(
    args: argparse.Namespace,
    paths: list[str],
    prune: bool,
    stack: str | None = None,
    adopt: bool = False,
    target: list[str] | None = None,
    options=None,
    timings=None,
):
    from bootstrap.timings import Timings, since_process_start

    timings = timings or Timings()
    # Interpreter start-up and the CLI's own imports come before any phase can be timed.
    timings.add("imports", since_process_start() or 0.0)
    with timings.phase("imports"):
        from bootstrap import engine
        from bootstrap.cloud import Cloud
        from bootstrap.retry import RetryPolicy

    loaded, cloud, plan, resolver = engine.plan_files(
        lambda: Cloud.connect(args.cloud, retry=RetryPolicy(budget=args.retry_budget)),
        paths,
        options if options is not None else load_options(args),
        prune=prune,
        stack=stack,
        adopt=adopt,
        targets=target or [],
        timings=timings,
    )
    total = since_process_start()
    timings.add("total", total if total is not None else sum(timings.seconds.values()))
    plan.timings = timings.as_dict()
    return loaded, cloud, plan, resolver


def _report_error(exc: BaseException, secrets: list | None = None) -> int:
    from bootstrap.errors import ManifestError
    from bootstrap.model import mask_secrets

    err = _console(stderr=True)
    if isinstance(exc, ManifestError):
        for d in exc.diagnostics:
            err.print(d.format(), markup=False)
        n = sum(1 for d in exc.diagnostics if d.is_error)
        err.print(f"{n} error(s): nothing was read or changed in the cloud.", markup=False)
    else:
        err.print(f"error: {mask_secrets(str(exc), secrets or [])}", markup=False)
    return EXIT_ERROR


def cmd_plan(args: argparse.Namespace) -> int:
    from bootstrap.errors import BootstrapError
    from bootstrap.model import mask_secrets

    _setup_logging(args.verbose)
    secrets: list = []
    try:
        loaded, _cloud, plan, _ = _plan_from_args(
            args, args.paths, args.prune, args.stack, args.adopt, args.target
        )
        secrets = loaded.manifest.secrets()
    except BootstrapError as exc:
        return _report_error(exc, secrets)
    # Imported once the plan is made: their imports (networkx, rich) would otherwise
    # come before the overlapped load and reads, and add to the wall time.
    from bootstrap.render_markdown import plan_markdown
    from bootstrap.render_plan import plan_json, print_plan, print_timings

    engine_hold(plan, args.allow_destroy)
    if args.out:
        doc = plan.to_json(loaded.manifest.files)
        doc["prune"] = args.prune
        doc["adopt"] = args.adopt
        # A saved plan reloads the same layers and variables.
        doc["inputs"] = {"paths": list(args.paths), **load_options(args).to_json()}
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2)
    if args.format == "json":
        print(plan_json(plan, loaded.manifest.files))
    elif args.format == "markdown":
        print(mask_secrets(plan_markdown(plan), secrets), end="")
    else:
        print_plan(_console(), plan)
        if args.timings:
            print_timings(_console(), plan.timings)
        if args.out:
            _console().print(f"Saved the plan to {args.out}; `bootstrap apply {args.out}`.")
    if args.detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """The manifest on stdout (or -o FILE); what it needs and left out on stderr."""
    from bootstrap import engine
    from bootstrap.cloud import Cloud
    from bootstrap.errors import BootstrapError
    from bootstrap.export import Scope
    from bootstrap.retry import RetryPolicy

    _setup_logging(args.verbose)
    scope = Scope(tuple(args.project), tuple(args.domain), tuple(args.kind))
    try:
        cloud = Cloud.connect(args.cloud, retry=RetryPolicy(budget=args.retry_budget))
        result = engine.export(cloud, scope, args.stack)
    except BootstrapError as exc:
        return _report_error(exc)
    text = result.to_yaml()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    err = _console(stderr=True)
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
    return EXIT_OK


def _refuse_unattended(args: argparse.Namespace, saved: dict | None) -> None:
    """No terminal to ask and no --yes: refuse before connecting, not after reading."""
    from bootstrap.errors import BootstrapError

    if not args.yes and saved is None and not sys.stdin.isatty():
        raise BootstrapError(
            "not a terminal: pass --yes to apply without asking (nothing was read or changed)"
        )


def cmd_apply(args: argparse.Namespace) -> int:
    """Apply, then (with --summary-json) record the run, whatever its outcome."""
    from bootstrap.model import mask_secrets
    from bootstrap.render_summary import RunRecord, summary_document, write_summary

    record = RunRecord()
    secrets: list = []

    def finish(code: int) -> int:
        if args.summary_json:
            mask = lambda text: mask_secrets(text, secrets)  # noqa: E731
            doc = summary_document(record, code, package_version(), mask)
            write_summary(args.summary_json, doc)
        return code

    try:
        code = _apply(args, record, secrets)
    except KeyboardInterrupt:
        record.error = "interrupted before the first write: nothing was changed"
        finish(EXIT_INTERRUPTED)
        raise
    except Exception as exc:  # a bug or an OSError: Python exits 1 with the traceback
        record.error = f"{type(exc).__name__}: {exc}"
        finish(EXIT_ERROR)
        raise
    if record.result is not None and record.result.interrupted:
        finish(EXIT_INTERRUPTED)
        _exit_interrupted()
    return finish(code)


def _apply(args: argparse.Namespace, record, secrets: list) -> int:
    import time

    from bootstrap import engine
    from bootstrap.errors import BootstrapError
    from bootstrap.model import mask_secrets
    from bootstrap.render_plan import print_apply_summary, print_plan

    _setup_logging(args.verbose)
    out = _console()
    saved = None
    paths, prune, stack, adopt = args.paths, args.prune, args.stack, args.adopt
    target = args.target
    if len(paths) == 1 and paths[0].endswith(".json"):
        with open(paths[0], encoding="utf-8") as fh:
            saved = json.load(fh)
        paths, prune = saved.get("manifest_files") or [], bool(saved.get("prune"))
        stack, adopt = saved.get("stack"), bool(saved.get("adopt"))
        # A saved targeted plan is checked against a fresh plan of the same targets.
        target = (saved.get("targets") or {}).get("requested") or []
    options = None
    if saved is not None:
        from bootstrap.manifest import LoadOptions

        # ... and the same environment layers and variables.
        options = LoadOptions.from_json(saved.get("inputs"))
        paths = (saved.get("inputs") or {}).get("paths") or paths
    record.manifest_files = list(paths)
    try:
        _refuse_unattended(args, saved)
        loaded, cloud, plan, resolver = _plan_from_args(
            args, paths, prune, stack, adopt, target, options
        )
        secrets.extend(loaded.manifest.secrets())
        record.plan = plan
        record.phase("plan")
        if saved is not None:
            engine.check_saved_plan(saved, plan)
        # Every check before the plan is shown and the question asked, so that the plan
        # says what will be held back and a "yes" is never answered in vain.
        held = engine.check_apply(cloud, plan, args.allow_destroy)
        print_plan(out, plan)
        if not plan.has_changes:
            return EXIT_OK
        if all(c.address in held for c in plan.changes if c.is_change):
            out.print("Nothing to apply: every change is held back.")
            return EXIT_CHANGES if args.detailed_exitcode else EXIT_OK
        if not args.yes and saved is None:
            if not sys.stdin.isatty():
                raise BootstrapError("not a terminal: pass --yes to apply without asking")
            if input("Apply these changes? [y/N] ").strip().lower() not in ("y", "yes"):
                out.print("Nothing changed.")
                return EXIT_OK
        record.phase("confirm")
        start = time.monotonic()
        before = cloud.counter.total
        result = _run_apply(out, engine, cloud, plan, resolver, args)
        record.result = result
        record.apply_requests = cloud.counter.total - before
        record.phase("apply")
    except BootstrapError as exc:
        record.error = str(exc)
        return _report_error(exc, secrets)
    print_apply_summary(
        out,
        result,
        record.apply_requests,
        time.monotonic() - start,
        lambda text: mask_secrets(text, secrets),
    )
    if result.interrupted:
        return EXIT_INTERRUPTED
    if not result.ok:
        return EXIT_ERROR
    return EXIT_CHANGES if args.detailed_exitcode and result.held else EXIT_OK


def check_destroy_patterns(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """`--allow-destroy` takes an optional value: `apply a.yaml --allow-destroy b.yaml`
    would read b.yaml as an address and never apply it. A path is refused, loudly."""
    import os

    for pattern in getattr(args, "allow_destroy", None) or []:
        if pattern != "*" and os.path.exists(pattern):
            parser.error(
                f"--allow-destroy {pattern!r} names a file, not an address: put the "
                f"manifest paths first, or write --allow-destroy=ADDRESS"
            )


def engine_hold(plan, allow_destroy) -> None:
    """Mark what apply would hold back under these flags (the plan shows it)."""
    from bootstrap import engine

    engine.hold(plan, allow_destroy)


def _run_apply(out, engine, cloud, plan, resolver, args):
    """The walk, with SIGINT/SIGTERM stopping it gracefully (see bootstrap.interrupt)."""
    import gc

    from bootstrap.interrupt import Interrupt, on_signals
    from bootstrap.render_plan import ApplyProgress

    gc.enable()  # off for the plan (see run): a long walk of many requests needs it
    total = sum(1 for c in plan.changes if c.is_change)
    say = _console(stderr=True).print
    with (
        on_signals(Interrupt(), lambda text: say(text, markup=False)) as interrupt,
        ApplyProgress(out, total) as on_event,
    ):
        return engine.apply(
            cloud,
            plan,
            resolver,
            allow_destroy=args.allow_destroy,
            parallelism=args.parallelism,
            on_event=on_event,
            # Long transfers (image uploads) add their bars to this display.
            progress=on_event.progress,
            interrupt=interrupt,
        )


def _exit_interrupted() -> None:
    """Exit 130 now: worker threads still in flight are abandoned, not joined."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


COMMANDS = {
    "validate": cmd_validate,
    "graph": cmd_graph,
    "plan": cmd_plan,
    "apply": cmd_apply,
    "export": cmd_export,
}


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """The console script and `python -m bootstrap`: main(), then a fast exit.

    Tearing the interpreter down frees every object of the run one by one (module by
    module, thousands of resources and client objects): about 0.25 s after a no-op plan
    of 1,000 resources, with nothing left to do by then. Output is flushed and logging
    shut down first; a crash still unwinds normally and prints its traceback.
    """
    import gc
    import os

    # A plan's imports, load, reads and diff allocate much and free little: the cyclic
    # collector's passes cost about a tenth of its CPU for nothing. Apply turns it back on.
    gc.disable()
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `bootstrap plan | head`: the reader left, not an error here
        pass
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    os._exit(int(code or 0))
