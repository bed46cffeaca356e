"""`plan --format markdown`: a plan as a merge-request comment. Pure: a Plan in, text out.

A reviewer reads the summary line first, then what destroys data, then the rest. Each
change is one collapsible `<details>` block whose body is a ```diff block, so the forge
colours removed and added values. Secrets are masked exactly as in the text and JSON
plans (FieldDiff.sensitive -> MASK); the CLI still runs `mask_secrets` over the result.
"""

from __future__ import annotations

import html

from bootstrap.model import MASK
from bootstrap.plan import Action, Change, FieldDiff, Plan
from bootstrap.render_plan import fmt_value, list_delta, reason_text, review_order, summary_line


def _esc(text: str) -> str:
    return html.escape(text, quote=False)  # quotes are fine in HTML text


def _fence(lines: list[str]) -> str:
    """A code fence longer than any backtick run in the body, so nothing escapes it."""
    longest = 0
    for line in lines:
        run = 0
        for ch in line:
            run = run + 1 if ch == "`" else 0
            longest = max(longest, run)
    return "`" * max(3, longest + 1)


def field_lines(d: FieldDiff, action: Action) -> list[str]:
    """diff lines: `- field: before` / `+ field: after`; lists as removed/added items."""
    before = MASK if d.sensitive else fmt_value(d.before)
    after = MASK if d.sensitive else fmt_value(d.after)
    if action is Action.CREATE:
        return [f"+ {d.field}: {after}"]
    delta = None if d.sensitive else list_delta(d.before, d.after)
    if action is Action.UPDATE and delta is not None:
        # "- item" / "+ item" already start with the diff marker.
        return [f"  {d.field}:"] + [f"{item[0]}   {item[2:]}" for item in delta]
    if action is Action.DELETE:
        return [f"- {d.field}: {before}"]
    return [f"- {d.field}: {before}", f"+ {d.field}: {after}"]


def change_block(change: Change) -> list[str]:
    """One `<details>` block: summary line (symbol, address, reason, held back), diff."""
    why = reason_text(change)
    head = f"<code>{_esc(change.action.symbol)} {_esc(str(change.address))}</code>"
    head += f" {change.action.value}"
    if why:
        head += f" ({_esc(why)})"
    if change.held_back:
        head += f" — <b>held back</b>: {_esc(change.held_back)}"
    body: list[str] = []
    for d in change.fields:
        body.extend(field_lines(d, change.action))
    if change.creates_first:
        body.append("# create before destroy: the old one is deleted last")
    if not body:
        body.append(f"# {change.action.value} {change.address}")
    fence = _fence(body)
    return [
        "<details>",
        f"<summary>{head}</summary>",
        "",
        f"{fence}diff",
        *body,
        fence,
        "",
        "</details>",
        "",
    ]


def plan_markdown(plan: Plan) -> str:
    changes = [c for c in review_order(plan.changes) if c.is_change]
    destructive = [c for c in changes if c.destructive]
    others = [c for c in changes if not c.destructive]
    lines = [f"### {summary_line(plan)}", ""]
    if plan.stack:
        lines += [f"Stack: `{plan.stack}`", ""]
    for note in targeting_lines(plan):
        lines.append(note)
    if plan.targets is not None:
        lines.append("")
    if not changes:
        lines += ["No changes. The cloud matches the manifest.", ""]
    if destructive:
        lines += [f"#### :warning: Destructive changes ({len(destructive)})", ""]
        for c in destructive:
            lines += change_block(c)
    if others:
        title = "Other changes" if destructive else "Changes"
        lines += [f"#### {title} ({len(others)})", ""]
        for c in others:
            lines += change_block(c)
    if plan.diagnostics:
        lines += ["#### Warnings", ""]
        lines += [f"- {_esc(d.format())}" for d in plan.diagnostics]
        lines.append("")
    lines.append(
        f"<sub>Read live state with {plan.requests} API requests in "
        f"{plan.read_seconds:.2f} s.</sub>"
    )
    return "\n".join(lines) + "\n"


def targeting_lines(plan: Plan) -> list[str]:
    """With --target: what was asked for, and what was pulled in and why."""
    if plan.targets is None:
        return []
    lines = ["Targeted: " + ", ".join(f"`{a}`" for a in plan.targets.selected), ""]
    for address, why in plan.targets.pulled_in.items():
        lines.append(f"- pulled in `{address}`: {_esc(why)}")
    return lines
