"""The published schemas of the tool's JSON outputs: the plan and the apply summary.

Generated from the constants of the code that writes them (the actions, the outcomes,
the format versions, the mask), so a new action or outcome changes the schema, and
`python -m bootstrap.schema --check` fails until schemas/*.schema.json are regenerated.
Tests validate every plan the golden cases and an integration run produce against them.
"""

from __future__ import annotations

from typing import Any

DRAFT = "https://json-schema.org/draft/2020-12/schema"
BASE_ID = "https://openstack-bootstrap.invalid/schemas/"

_NULLABLE_STRING = {"type": ["string", "null"]}
_COUNT = {"type": "integer", "minimum": 0}


def _object(props: dict[str, Any], description: str, optional: tuple[str, ...] = ()) -> dict:
    return {
        "type": "object",
        "description": description,
        "additionalProperties": False,
        "required": [k for k in props if k not in optional],
        "properties": props,
    }


def targets_schema() -> dict[str, Any]:
    return {
        "description": "With --target: what was asked for, the addresses it matched, and "
        "every resource pulled in as a dependency with the reason; null without --target.",
        "anyOf": [
            {"type": "null"},
            _object(
                {
                    "requested": {"type": "array", "items": {"type": "string"}},
                    "selected": {"type": "array", "items": {"type": "string"}},
                    "pulled_in": {
                        "type": "array",
                        "items": _object(
                            {"address": {"type": "string"}, "reason": {"type": "string"}},
                            "A resource planned because a targeted one needs it.",
                        ),
                    },
                },
                "The targeted part of the manifest.",
            ),
        ],
    }


def plan_schema() -> dict[str, Any]:
    from bootstrap.model import MASK
    from bootstrap.plan import PLAN_FORMAT_VERSION, Action

    actions = [a.value for a in Action]
    field_diff = {
        **_object(
            {
                "field": {"type": "string", "description": "The manifest's field name."},
                "before": {"description": "The live value (null: not set or absent)."},
                "after": {"description": "The manifest's value."},
                "sensitive": {"type": "boolean"},
            },
            "One field that differs.",
        ),
        # A secret's values are masked, before and after: checked by the schema itself.
        "if": {"properties": {"sensitive": {"const": True}}},
        "then": {"properties": {"before": {"const": MASK}, "after": {"const": MASK}}},
    }
    step = _object(
        {
            "verb": {"enum": ["create", "update", "delete"]},
            "args": {
                "type": "object",
                "description": "API-ready arguments; ids not known yet are "
                "'(known after apply: ADDRESS)', set fields {add, remove}, map fields "
                "{set, unset}.",
            },
            "note": {"type": "string"},
        },
        "One operation apply runs.",
        optional=("note",),
    )
    change = _object(
        {
            "address": {"type": "string", "description": "kind.key, e.g. servers.acme/web-1"},
            "kind": {"type": "string"},
            "action": {"enum": actions},
            "reason": _NULLABLE_STRING,
            "destructive": {"type": "boolean"},
            "id": {**_NULLABLE_STRING, "description": "The live id (null: does not exist)."},
            "observed": {
                **_NULLABLE_STRING,
                "description": "A fingerprint of what was read: a saved plan is refused "
                "when it differs at apply.",
            },
            "fields": {"type": "array", "items": field_diff},
            "steps": {"type": "array", "items": step},
            "held_back": {"type": "boolean"},
            "held_back_reason": _NULLABLE_STRING,
        },
        "One resource of the plan (no-op ones included).",
    )
    diagnostic = _object(
        {
            "severity": {"enum": ["error", "warning"]},
            "summary": {"type": "string"},
            "detail": _NULLABLE_STRING,
            "address": _NULLABLE_STRING,
            "file": _NULLABLE_STRING,
            "line": {"type": ["integer", "null"]},
            "column": {"type": ["integer", "null"]},
        },
        "A located problem or warning.",
    )
    summary = _object(
        {**{a: _COUNT for a in actions}, "destructive": _COUNT, "held_back": _COUNT},
        "Changes per action, and how many destroy data or are held back.",
    )
    return {
        "$schema": DRAFT,
        "$id": BASE_ID + "plan.schema.json",
        "title": "openstack-bootstrap plan",
        "description": "`bootstrap plan --format json` and `plan --out FILE` (which adds "
        "prune and adopt). Generated by `python -m bootstrap.schema`; do not edit.",
        **_object(
            {
                "format_version": {"const": PLAN_FORMAT_VERSION},
                "manifest_files": {"type": "array", "items": {"type": "string"}},
                "stack": _NULLABLE_STRING,
                "summary": summary,
                "requests": {**_COUNT, "description": "API requests the read took."},
                "timings": {
                    "type": "object",
                    "additionalProperties": {"type": "number", "minimum": 0},
                    "description": "Seconds per phase (imports, load, connect, clients, "
                    "reads and read.<kind>, probes, diff, total); present when measured.",
                },
                "targets": targets_schema(),
                "changes": {"type": "array", "items": change},
                "diagnostics": {"type": "array", "items": diagnostic},
                "prune": {"type": "boolean", "description": "Saved plans: --prune."},
                "adopt": {"type": "boolean", "description": "Saved plans: --adopt."},
                "inputs": {
                    "type": "object",
                    "additionalProperties": False,
                    "description": "Saved plans: the manifest paths, --env layers, --var and "
                    "--var-file given, so `apply PLAN.json` loads the same manifest.",
                    "properties": {
                        k: {"type": "array", "items": {"type": "string"}, "description": d}
                        for k, d in (
                            ("paths", "The manifest files and folders given."),
                            ("env", "--env layers, in order."),
                            ("var", "--var NAME=VALUE, in order."),
                            ("var_file", "--var-file files, in order."),
                        )
                    },
                },
            },
            "A plan.",
            optional=("prune", "adopt", "inputs", "timings"),
        ),
    }


def summary_schema() -> dict[str, Any]:
    from bootstrap.plan import Action
    from bootstrap.render_summary import SUMMARY_FORMAT_VERSION
    from bootstrap.walk import (
        CREATED,
        DELETED,
        FAILED,
        HELD,
        INTERRUPTED,
        NOT_STARTED,
        REPLACED,
        SKIPPED,
        UNCHANGED,
        UPDATED,
    )

    outcomes = [
        CREATED, UPDATED, REPLACED, DELETED, UNCHANGED, FAILED, SKIPPED, HELD,
        INTERRUPTED, NOT_STARTED,
    ]  # fmt: skip
    plan_counts = [a.value for a in Action] + ["destructive", "held_back"]
    return {
        "$schema": DRAFT,
        "$id": BASE_ID + "summary.schema.json",
        "title": "openstack-bootstrap apply summary",
        "description": "`bootstrap apply --summary-json FILE`: written whatever the outcome. "
        "Generated by `python -m bootstrap.schema`; do not edit.",
        **_object(
            {
                "format_version": {"const": SUMMARY_FORMAT_VERSION},
                "tool_version": {"type": "string"},
                "status": {
                    "enum": ["no-changes", "changed", "held-back", "failed", "interrupted"],
                    "description": "no-changes: nothing to do; changed: every change "
                    "planned was applied; held-back: some were held back (--allow-destroy); "
                    "failed: an error (exit 1); interrupted: SIGINT/SIGTERM (exit 130).",
                },
                "exit_code": {"enum": [0, 1, 2, 130]},
                "started_at": {"type": "string", "format": "date-time"},
                "finished_at": {"type": "string", "format": "date-time"},
                "manifest_files": {"type": "array", "items": {"type": "string"}},
                "stack": _NULLABLE_STRING,
                "targets": targets_schema(),
                "plan": {
                    "description": "The plan's counts (null: no plan was made).",
                    "anyOf": [
                        {"type": "null"},
                        _object({k: _COUNT for k in plan_counts}, "Changes per action."),
                    ],
                },
                "outcomes": {
                    "description": "Resources per outcome (null: nothing was applied).",
                    "anyOf": [
                        {"type": "null"},
                        _object(
                            {k.replace(" ", "_"): _COUNT for k in outcomes},
                            "Resources per outcome.",
                        ),
                    ],
                },
                "requests": _object(
                    {"read": _COUNT, "apply": _COUNT}, "API requests per phase."
                ),
                "durations": {
                    "type": "object",
                    "description": "Seconds: total, and per phase reached (plan, confirm, "
                    "apply).",
                    "required": ["total_seconds"],
                    "additionalProperties": False,
                    "patternProperties": {
                        "^(total|plan|confirm|apply)_seconds$": {"type": "number", "minimum": 0}
                    },
                },
                "failures": {
                    "type": "array",
                    "items": _object(
                        {
                            "address": {"type": "string"},
                            "error": {"type": "string", "description": "The root cause."},
                            "skipped": {"type": "array", "items": {"type": "string"}},
                        },
                        "A failed resource and what was skipped because of it.",
                    ),
                },
                "held_back": {
                    "type": "array",
                    "items": _object(
                        {"address": {"type": "string"}, "reason": {"type": "string"}},
                        "A change not applied under the --allow-destroy given.",
                    ),
                },
                "interrupted_by": _NULLABLE_STRING,
                "error": {
                    **_NULLABLE_STRING,
                    "description": "Why the run stopped before applying (bad manifest, "
                    "credentials, a stale saved plan), secrets masked.",
                },
            },
            "One apply run.",
        ),
    }


DOCUMENTS = {"plan.schema.json": plan_schema, "summary.schema.json": summary_schema}
