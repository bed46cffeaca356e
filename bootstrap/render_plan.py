"""Human output of plans and apply runs (rich): coloured symbols, field diffs, summaries."""

from __future__ import annotations

import json
import uuid
from typing import Any

from rich.console import Console
from rich.markup import escape

from bootstrap.apply import FAILED, ApplyResult, skipped_by
from bootstrap.drivers.base import kinds
from bootstrap.model import MASK
from bootstrap.plan import Action, Change, FieldDiff, Plan

STYLE = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.REPLACE: "magenta",
    Action.DELETE: "red",
    Action.NOOP: "dim",
}


def fmt_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def fmt_field(d: FieldDiff, action: Action) -> str:
    if d.sensitive:
        before, after = MASK, MASK
    else:
        before, after = fmt_value(d.before), fmt_value(d.after)
    if action is Action.CREATE:
        return f"{d.field}: {after}"
    return f"{d.field}: {before} -> {after}"


def list_delta(before: Any, after: Any) -> list[str] | None:
    """For two lists (rules, members, interfaces): the items removed and added, or None."""
    if not (isinstance(before, list) and isinstance(after, list)):
        return None
    key = {fmt_value(v): v for v in before}
    want = {fmt_value(v): v for v in after}
    return [f"- {k}" for k in key if k not in want] + [f"+ {k}" for k in want if k not in key]


# In the column before the action symbol: this change is destructive — it deletes,
# replaces, rebuilds or resizes (see gates.py for which of them need --allow-destroy).
DESTROYS = "!"


def reason_text(change: Change) -> str:
    """The reason on a change's line: always for what destroys data, and for replaces,
    deletes and updates that happen for a reason beyond "fields differ"."""
    if change.destructive:
        return f"destructive: {change.reason}" if change.reason else "destructive"
    if change.action is Action.UPDATE and change.reason == "fields differ":
        return ""
    if change.action in (Action.REPLACE, Action.DELETE, Action.UPDATE):
        return change.reason
    return ""


def change_lines(change: Change) -> list[str]:
    style = STYLE[change.action]
    why = reason_text(change)
    reason = f"  [dim]({escape(why)})[/dim]" if why else ""
    if change.destructive:
        reason = f"  [bold red]({escape(why)})[/bold red]"
    mark = f"[bold red]{DESTROYS}[/bold red]" if change.destructive else " "
    head = (
        f"{mark}[{style}]{change.action.symbol:>3} {escape(str(change.address))}[/{style}]"
        f"{reason}"
    )
    lines = [head]
    for d in change.fields:
        delta = None if d.sensitive else list_delta(d.before, d.after)
        if change.action is Action.UPDATE and delta is not None:
            lines.append(f"      {escape(d.field)}:")
            lines.extend(f"        {escape(item)}" for item in delta)
        else:
            lines.append(f"      {escape(fmt_field(d, change.action))}")
    if change.creates_first:
        lines.append("      [dim]create before destroy: the old one is deleted last[/dim]")
    if change.held_back:
        lines.append(f"      [bold yellow]held back: {escape(change.held_back)}[/bold yellow]")
    return lines


def summary_line(plan: Plan) -> str:
    c = plan.counts()
    destructive = sum(1 for x in plan.changes if x.destructive)
    held = sum(1 for x in plan.changes if x.held_back)
    notes = [f"{destructive} destructive"] if destructive else []
    if held:
        notes.append(f"{held} held back")
    return (
        f"Plan: {c['create']} to create, {c['update']} to update, {c['replace']} to replace, "
        f"{c['delete']} to delete, {c['no-op']} unchanged"
        + (f" ({', '.join(notes)})." if notes else ".")
    )


def review_order(changes: list[Change]) -> list[Change]:
    """Manifest section order, then address: stable, and how a reviewer reads a manifest."""
    rank = {k: i for i, k in enumerate(kinds())}
    return sorted(changes, key=lambda c: (rank.get(c.address.kind, 99), str(c.address)))


def print_plan(console: Console, plan: Plan) -> None:
    if plan.stack:
        console.print(f"Stack: {escape(plan.stack)}", highlight=False)
    for line in target_lines(plan):
        console.print(escape(line), highlight=False)
    for change in review_order(plan.changes):
        if change.is_change:
            for line in change_lines(change):
                console.print(line, highlight=False)
    for d in plan.diagnostics:
        console.print(f"[yellow]{escape(d.format())}[/yellow]", highlight=False)
    if not plan.has_changes:
        console.print("[green]No changes.[/green] The cloud matches the manifest.")
    console.print(summary_line(plan), highlight=False)
    console.print(
        f"[dim]Read live state with {plan.requests} API requests in "
        f"{plan.read_seconds:.2f} s.[/dim]",
        highlight=False,
    )


def print_timings(console: Console, timings: dict[str, float]) -> None:
    """One line per phase; a kind's read is indented under the reads (they overlap)."""
    console.print("Timings (seconds):", highlight=False)
    for name, seconds in timings.items():
        label = f"    {name[len('read.') :]}" if name.startswith("read.") else name
        console.print(f"  {label:<22} {seconds:8.3f}", highlight=False)


def target_lines(plan: Plan) -> list[str]:
    """With --target: the addresses asked for, then each one pulled in and why."""
    if plan.targets is None:
        return []
    lines = ["Targeted: " + ", ".join(plan.targets.selected)]
    lines += [f"  pulled in {a}: {why}" for a, why in plan.targets.pulled_in.items()]
    return lines


def plan_json(plan: Plan, files: list[str]) -> str:
    return json_rows(plan.to_json(files), "changes")


def json_rows(doc: dict[str, Any], key: str) -> str:
    """`doc` as indented JSON with the list under `key` one item per line: json's C
    encoder writes only unindented JSON, and the indenting one (pure Python) took 0.5 s
    of a 10,000-resource plan. One change per line also greps and diffs well."""
    placeholder = f"@{uuid.uuid4().hex}@"
    text = json.dumps({**doc, key: placeholder}, indent=2)
    rows = ",\n    ".join(json.dumps(row) for row in doc[key])
    return text.replace(json.dumps(placeholder), f"[\n    {rows}\n  ]" if rows else "[]", 1)


def print_apply_summary(
    console: Console, result: ApplyResult, requests: int, seconds: float, mask
) -> None:
    s = result.summary()
    console.print(
        f"Apply: {s['created']} created, {s['updated']} updated, {s['replaced']} replaced, "
        f"{s['deleted']} deleted, {s['unchanged']} unchanged, {s['failed']} failed, "
        f"{s['skipped']} skipped, {s['held back']} held back"
        + (
            f", {s['interrupted']} interrupted, {s['not started']} not started"
            if result.interrupted
            else ""
        )
        + f". [dim]({requests} API requests, {seconds:.1f} s)[/dim]",
        highlight=False,
    )
    print_held(console, result)
    _print_interrupted(console, result, mask)
    skipped = skipped_by(result)
    for r in result.results.values():
        if r.outcome != FAILED:
            continue
        console.print(f"[red]error:[/red] {escape(mask(str(r.error)))}", highlight=False)
        deps = skipped.get(str(r.address), [])
        if deps:
            console.print(
                f"       skipped because of it: {escape(', '.join(sorted(deps)))}",
                highlight=False,
            )


def print_held(console: Console, result: ApplyResult) -> None:
    """What apply held back and why: nothing of it ran; the next plan shows it again."""
    held = sorted(result.held, key=lambda r: str(r.address))
    if not held:
        return
    console.print(
        f"[bold yellow]Held back ({len(held)}), not applied:[/bold yellow]", highlight=False
    )
    for r in held:
        console.print(f"  {escape(str(r.address))}: {escape(r.detail)}", highlight=False)


def _print_interrupted(console: Console, result: ApplyResult, mask) -> None:
    """After SIGINT/SIGTERM: what was still running and what never started."""
    if not result.interrupted:
        return
    late = sorted(str(r.address) for r in result.results.values() if r.outcome == "interrupted")
    never = sorted(
        str(r.address) for r in result.results.values() if r.outcome == "not started"
    )
    console.print(f"[yellow]interrupted[/yellow] by {result.interrupted}.", highlight=False)
    if late:
        console.print(
            f"       still in flight (the next plan shows them): {escape(mask(', '.join(late)))}",
            highlight=False,
        )
    if never:
        console.print(f"       not started: {escape(mask(', '.join(never)))}", highlight=False)
    console.print("       Run apply again to complete it.", highlight=False)


class ApplyProgress:
    """A line per finished change and, on a terminal, a progress bar below them."""

    def __init__(self, console: Console, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.console = console
        self.progress = Progress(
            "[bold]applying[/bold]",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self.task = self.progress.add_task("apply", total=total)

    def __enter__(self) -> ApplyProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, change: Change, status: str, error: BaseException | None) -> None:
        if status == "start":
            return
        colour = {
            "failed": "red",
            "skipped": "red",
            "held back": "yellow",
            "interrupted": "yellow",
        }.get(status, "green")
        self.progress.console.print(
            f"  [{colour}]{status:>9}[/{colour}] {escape(str(change.address))}", highlight=False
        )
        self.progress.advance(self.task)
