"""Command line: parse, call the engine, render. The ONLY place that picks exit codes.

Exit codes: 0 success (plan: no changes), 1 error, 2 with --detailed-exitcode: plan —
changes present; apply — changes held back (destructive without --allow-destroy), the
cloud still differs from the manifest. Like Terraform, a plain apply that did everything
it was allowed to do exits 0 even when it held changes back: holding back is the policy
working, not a failure; timers that must notice pass --detailed-exitcode.
130: interrupted (SIGINT/SIGTERM), after a summary of what was done.

The arguments are in cli_parser.py, the console and error reports in cli_console.py, the
export command's work in cli_export.py: those print and raise, never pick an exit code.
"""

from __future__ import annotations

import argparse
import json
import sys

from bootstrap.cli_console import console, print_error, setup_logging
from bootstrap.cli_parser import build_parser, load_options, package_version

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INTERRUPTED = 130


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
        from bootstrap.manifest import loader
        from bootstrap.retry import RetryPolicy

        loader.import_dependencies()  # PyYAML, the drivers, jsonschema-rs: not the load's work

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
    print_error(exc, secrets)
    return EXIT_ERROR


def cmd_export(args: argparse.Namespace) -> int:
    """The manifest on stdout (or -o FILE); what it needs and left out on stderr."""
    from bootstrap.cli_export import run_export
    from bootstrap.errors import BootstrapError

    try:
        run_export(args)
    except BootstrapError as exc:
        return _report_error(exc)
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    from bootstrap.errors import BootstrapError
    from bootstrap.model import mask_secrets

    setup_logging(args.verbose)
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
    from bootstrap.render_plan import json_rows, plan_json, print_plan, print_timings

    engine_hold(plan, args.allow_destroy)
    if args.out:
        doc = plan.to_json(loaded.manifest.files)
        doc["prune"] = args.prune
        doc["adopt"] = args.adopt
        # A saved plan reloads the same layers and variables.
        doc["inputs"] = {"paths": list(args.paths), **load_options(args).to_json()}
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(json_rows(doc, "changes") + "\n")
    if args.format == "json":
        print(plan_json(plan, loaded.manifest.files))
    elif args.format == "markdown":
        print(mask_secrets(plan_markdown(plan), secrets), end="")
    else:
        print_plan(console(), plan)
        if args.timings:
            print_timings(console(), plan.timings)
        if args.out:
            console().print(f"Saved the plan to {args.out}; `bootstrap apply {args.out}`.")
    if args.detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES
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

    setup_logging(args.verbose)
    out = console()
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
    say = console(stderr=True).print
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
