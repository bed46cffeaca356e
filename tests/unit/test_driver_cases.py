"""Golden driver cases: one YAML file per case under tests/cases/<kind>/.

Each file gives a manifest spec, the ids the resolver knows, the observed live state
(or null) and the expected decision. The real driver's pure functions decide.

    # why this case matters (a comment for reviewers)
    spec: {name: acme, domain: {ref: domains.Default}}
    state: present            # optional
    known: {domains.Default: default}
    observed: {id: p1, fields: {name: acme, domain_id: default}}   # or null
    facts:                    # optional: probe results the engine would hand to diff
      - probe: FileDigests    # a class of bootstrap.probes or of the driver's module
        args: {path: /x.img, algos: [sha512]}
        result: {sha512: ab12...}
    expect:
      action: update          # no-op | create | update | replace | delete
      fields: [description]   # optional: exactly these fields differ
      destructive: false      # optional
      steps:                  # optional: the steps apply will run, as in the plan JSON
        - {verb: update, args: {description: new}}
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import yaml

from bootstrap import probes
from bootstrap.drivers.base import Driver, driver_modules, kinds, registry
from bootstrap.model import Address, Lifecycle, Ref, Resource, Secret
from bootstrap.plan import Observed, Resolver

CASES = Path(__file__).resolve().parent.parent / "cases"
DRIVER_KINDS = sorted(registry())


def parse_address(text: str) -> Address:
    kind, _, key = text.partition(".")
    return Address(kind, tuple(key.split("/")))


def convert(value):
    """{ref: kind.key} -> Ref, {secret: text} -> Secret; recursively."""
    if isinstance(value, dict):
        if set(value) == {"ref"}:
            return Ref(parse_address(value["ref"]))
        if set(value) == {"secret"}:
            return Secret(value["secret"], "test")
        return {k: convert(v) for k, v in value.items()}
    if isinstance(value, list):
        return [convert(v) for v in value]
    return value


def make_facts(kind: str, items) -> dict:
    """Probe -> result from a case's `facts` list (tuples where probes want them)."""
    module = importlib.import_module(registry()[kind].__module__)
    out = {}
    for item in items or []:
        cls = getattr(module, item["probe"], None) or getattr(probes, item["probe"])
        args = {
            k: tuple(v) if isinstance(v, list) else convert(v)
            for k, v in (item.get("args") or {}).items()
        }
        out[cls(**args)] = convert(item["result"])
    return out


def case_files():
    return sorted(p for kind in DRIVER_KINDS for p in (CASES / kind).glob("*.yaml"))


def case_change(path: Path):
    """The case's YAML, its resource, and the change its driver decides."""
    case = yaml.safe_load(path.read_text())
    kind = path.parent.name
    driver = registry()[kind]()
    spec = convert(case["spec"])
    lifecycle = case.get("lifecycle") or {}
    res = Resource(
        driver.address(spec),
        spec,
        case.get("state", "present"),
        lifecycle=Lifecycle(
            prevent_destroy=bool(lifecycle.get("prevent_destroy")),
            ignore_changes=frozenset(lifecycle.get("ignore_changes") or ()),
            create_before_destroy=lifecycle.get("create_before_destroy"),
        ),
    )
    resolver = Resolver({parse_address(a): i for a, i in (case.get("known") or {}).items()})
    obs = case.get("observed")
    observed_list = [
        Observed(o["id"], convert(o["fields"]), managed=bool(o.get("managed")))
        for o in ([] if obs is None else [obs]) + case.get("others", [])
    ]
    live = driver.match(res, observed_list, resolver)
    change = driver.diff(res, live, resolver, make_facts(kind, case.get("facts")))
    return case, res, change


@pytest.mark.parametrize("path", case_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_driver_case(path: Path):
    case, res, change = case_change(path)
    expect = case["expect"]
    assert change.action.value == expect["action"], change
    if "fields" in expect:
        assert sorted(d.field for d in change.fields) == sorted(expect["fields"])
    if "destructive" in expect:
        assert change.destructive == expect["destructive"]
    if "steps" in expect:
        assert [s.to_json() for s in change.steps] == expect["steps"]
    if "address" in expect:
        assert str(res.address) == expect["address"]


def lifecycle_tests() -> dict[str, list[str]]:
    """kind -> the integration tests marked @pytest.mark.lifecycle(kind, ...), read with
    ast so that no cloud (and no integration fixture) is needed."""
    found: dict[str, list[str]] = {}
    for path in sorted((CASES.parent / "integration").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and ast.unparse(deco.func) == "pytest.mark.lifecycle":
                    for arg in deco.args:
                        assert isinstance(arg, ast.Constant), f"{path.name}: name kinds literally"
                        found.setdefault(arg.value, []).append(f"{path.name}::{node.name}")
    return found


def test_every_kind_is_complete():
    """Adding a kind = a driver file + its schema part + its case folder + its lifecycle
    test; every module of bootstrap/drivers/ that is not a helper (_*.py) is a kind."""
    root = CASES.parent.parent
    problems = []
    drivers = registry()
    lifecycles = lifecycle_tests()
    for kind, cls in drivers.items():
        if not (root / "schemas" / "parts" / f"{kind}.schema.json").is_file():
            problems.append(f"{kind}: no schemas/parts/{kind}.schema.json")
        if not list((CASES / kind).glob("*.yaml")):
            problems.append(f"{kind}: no golden cases in tests/cases/{kind}/")
        if kind not in lifecycles:
            problems.append(f"{kind}: no integration test marked @pytest.mark.lifecycle({kind!r})")
        if cls.__module__ != f"bootstrap.drivers.{kind}":
            problems.append(f"{kind}: its driver is not in bootstrap/drivers/{kind}.py")
        methods = ["read_all", "create", "delete"] + (["update"] if cls.updatable else [])
        for method in methods:
            if getattr(cls, method) is getattr(Driver, method):
                problems.append(f"{kind}: driver does not implement {method}")
    for module in driver_modules():
        if not any(cls.__module__ == module for cls in drivers.values()):
            problems.append(f"{module}: registers no driver (helpers start with _)")
    for kind in sorted(set(lifecycles) - set(drivers)):
        problems.append(f"{lifecycles[kind]}: lifecycle marker names unknown kind {kind!r}")
    positions = [cls.position for cls in drivers.values()]
    if len(set(positions)) != len(positions):
        problems.append(f"two kinds share a position: {positions}")
    assert not problems, "\n".join(problems)


def test_the_kind_order_is_the_manifest_order():
    assert kinds() == (
        "domains",
        "projects",
        "quotas",
        "roles",
        "users",
        "application_credentials",
        "groups",
        "role_assignments",
        "regions",
        "services",
        "endpoints",
        "images",
        "flavors",
        "keypairs",
        "server_groups",
        "security_groups",
        "networks",
        "subnets",
        "routers",
        "floating_ips",
        "servers",
    )
