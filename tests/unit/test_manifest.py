"""Loader unit tests: positions, secrets, references, merging, limits, the examples."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from bootstrap import graph, manifest
from bootstrap.drivers.base import registry
from bootstrap.errors import ManifestError, Source
from bootstrap.model import Address, Ref, Secret

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "manifests"
CASES = REPO / "tests" / "cases" / "manifest"
SECRET = "Tr0ub4dor&3-not-in-any-output"


def write(tmp_path: Path, text: str, name: str = "m.yaml") -> str:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return str(path)


def load_text(tmp_path: Path, text: str, **env: str):
    return manifest.load([write(tmp_path, text)], environ=env)


def errors(diags) -> list[str]:
    return [d.format() for d in diags if d.is_error]


# --- positions ---------------------------------------------------------------------------


def test_positions_of_resources_fields_and_nested_errors(tmp_path):
    m, diags = load_text(
        tmp_path,
        """
        projects:
          - name: acme
            description: "hi"
        security_groups:
          - name: web
            project: acme
            rules:
              - {protocol: tcp, port: 22}
              - protocol: tcp
                port: 99999
        """,
    )
    acme = m.get(Address("projects", ("acme",)))
    assert acme.source.line == 2 and acme.source.column == 5
    assert acme.field_sources["description"].line == 3
    assert acme.field_sources["description"].column == 18
    web = m.get(Address("security_groups", ("acme", "web")))
    # The expanded shorthand points at the `port` the user wrote.
    assert web.field_sources["rules[0].port_range_min"] == web.field_sources["rules[0].port"]
    assert web.field_sources["rules[0].port"].column == 31
    (d,) = diags
    assert (d.source.line, d.source.column) == (10, 15)
    assert d.address == "security_groups.acme/web"
    assert "rules[1].port" in d.summary


def test_duplicate_keys_are_located_at_the_second_with_the_first_named(tmp_path):
    _, diags = load_text(tmp_path, "projects:\n  - name: a\n    name: b\n")
    (d,) = diags
    assert (d.source.line, d.source.column) == (3, 5)
    assert "first written at line 2, column 5" in d.summary


def test_yaml_12_scalars():
    r = manifest.resolve_plain
    assert [r("true"), r("False"), r("yes"), r("on"), r("no")] == [True, False, "yes", "on", "no"]
    assert [r("~"), r("null"), r("")] == [None, None, None]
    assert [r("010"), r("0o17"), r("0x1F"), r("-3")] == [10, 15, 31, -3]
    assert [r("1.5"), r("2024-01-01"), r("1_000")] == [1.5, "2024-01-01", "1_000"]


def test_dates_and_norway_stay_strings(tmp_path):
    m, diags = load_text(
        tmp_path,
        """
        images:
          - name: img
            managed: false
            properties: {built: 2024-01-01, country: NO, ok: true}
        """,
    )
    assert diags == []
    props = m.get(Address("images", ("img",))).spec["properties"]
    assert props == {"built": "2024-01-01", "country": "NO", "ok": True}


# --- limits ------------------------------------------------------------------------------


def test_yaml_bomb_is_refused_fast():
    start = time.perf_counter()
    m, diags = manifest.load([str(CASES / "invalid" / "yaml-bomb.yaml")])
    elapsed = time.perf_counter() - start
    assert m is None
    assert any("anchors and aliases are not supported" in d.summary for d in diags)
    assert elapsed < 1.0, elapsed


def test_a_deeper_bomb_is_refused_fast(tmp_path):
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 30):  # 10^30 strings if expanded
        refs = ",".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    m, diags = manifest.load([str(path)])
    assert time.perf_counter() - start < 1.0
    assert m is None and any(d.is_error for d in diags)


# Pathological YAML: each is refused with one located error. The bound is generous (the
# deep file took 44-98 s before); on 2 idle cores each takes 0.1-0.5 s.
PATHOLOGICAL = {
    # name: (text, (line, column), message)
    "deep flow": (
        "version: 1\nprojects: " + "[" * 20_000 + "]" * 20_000 + "\n",
        (2, 75),
        "nesting deeper than 64 levels",
    ),
    "deep block": (
        "version: 1\nprojects:\n" + "".join("  " * i + "- \n" for i in range(1, 400)),
        (67, 131),
        "nesting deeper than 64 levels",
    ),
    "huge scalar": (
        "version: 1\nprojects:\n  - name: acme\n    description: " + "a" * 9_000_000 + "\n",
        (4, 18),
        "a value of 9,000,000 characters; at most 1,048,576",
    ),
    "many keys": (
        "version: 1\nroles:\n  - name: r\n    x:\n"
        + "".join(f"      k{i}: 1\n" for i in range(600_000)),
        (10005, 7),
        "more than 10,000 keys in one mapping",
    ),
    "many nodes": (
        "version: 1\nprojects:\n" + "".join(f"  - {{name: p{i}}}\n" for i in range(400_000)),
        (16668, 5),
        "more than 50,000 YAML nodes in one file",
    ),
}


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_yaml_is_refused_located(tmp_path, name):
    text, (line, column), message = PATHOLOGICAL[name]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    start = time.perf_counter()
    m, diags = manifest.load([str(path)])
    elapsed = time.perf_counter() - start
    assert m is None
    errors = [d for d in diags if d.is_error]
    assert [(d.source.line, d.source.column) for d in errors] == [(line, column)], diags
    assert message in errors[0].summary
    assert elapsed < 10.0, elapsed


def test_a_50_mb_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as fh:
        fh.write(b"projects:\n  - name: a\n")
        fh.truncate(50 * 1024 * 1024)  # sparse: fast to make, 50 MB to stat
    start = time.perf_counter()
    m, diags = manifest.load([str(path)])
    assert time.perf_counter() - start < 1.0
    assert m is None
    (d,) = diags
    assert "50.0 MB" in d.summary and "10 MB" in d.summary and "not parsed" in d.summary
    assert (d.source.file, d.source.line, d.source.column) == (str(path), 1, 1)


def test_missing_paths_devices_and_empty_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    m, diags = manifest.load([str(tmp_path / "nope.yaml"), str(tmp_path / "empty"), os.devnull])
    assert m is None
    texts = [d.summary for d in diags]
    assert any("no such file or directory" in t for t in texts)
    assert any("no *.yaml or *.yml files" in t for t in texts)
    assert any("not a regular file" in t for t in texts)


# --- secrets -----------------------------------------------------------------------------


def test_secret_from_env_file_and_inline(tmp_path):
    (tmp_path / "pw.txt").write_text(SECRET + "\n\n")
    m, diags = load_text(
        tmp_path,
        """
        users:
          - {name: a, password: {env: PW_A}}
          - {name: b, password: {file: pw.txt}}
          - {name: c, password: inline-one}
        servers: []
        """,
        PW_A=SECRET,
    )
    a, b, c = (m.get(Address("users", (n,))).spec["password"] for n in "abc")
    assert isinstance(a, Secret) and a.reveal() == SECRET and a.origin == "env:PW_A"
    # exactly one trailing newline is stripped
    assert b.reveal() == SECRET + "\n" and b.origin == "file:pw.txt"
    assert c.reveal() == "inline-one" and c.origin == "inline"
    (w,) = diags
    assert w.severity == "warning" and "password written inline" in w.summary
    assert (w.source.line, w.source.column) == (4, 25)


def test_secret_values_never_appear_in_text_forms(tmp_path):
    (tmp_path / "pw.txt").write_text(SECRET)
    m, diags = load_text(
        tmp_path,
        f"""
        users:
          - {{name: a, password: {{env: PW_A}}}}
          - {{name: b, password: {{file: pw.txt}}}}
          - {{name: c, password: "{SECRET}"}}
          - {{name: d, password: 31415926535, default_project: nope}}
          - {{name: e, password: ["{SECRET}"]}}
        """,
        PW_A=SECRET,
    )
    texts = [repr(m), str(m.resources), repr(list(m)), *(d.format() for d in diags)]
    texts += [str(ManifestError(diags)), repr(ManifestError(diags).diagnostics)]
    texts += [str(d.to_json()) for d in diags]
    for text in texts:
        assert SECRET not in text
        assert "31415926535" not in text
    assert any("password' must be a string or a mapping, got an integer" in t for t in texts)
    # An invalid secret is dropped from the spec rather than kept in plain text.
    assert "password" not in m.get(Address("users", ("d",))).spec


def test_absent_resources_do_not_read_secrets(tmp_path):
    m, diags = load_text(
        tmp_path,
        """
        users:
          - {name: gone, password: {env: NOT_SET_ANYWHERE}, state: absent}
        """,
    )
    assert diags == []
    assert "password" not in m.get(Address("users", ("gone",))).spec


def test_os_environ_is_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOTSTRAP_TEST_PW", SECRET)
    m, diags = manifest.load(
        [write(tmp_path, "users: [{name: a, password: {env: BOOTSTRAP_TEST_PW}}]")]
    )
    assert diags == []
    assert m.secrets()[0].reveal() == SECRET


# --- specs, references, addresses --------------------------------------------------------


def test_specs_hold_what_was_written_plus_normalisation(tmp_path):
    (tmp_path / "k.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHf0 me\n")
    m, diags = load_text(
        tmp_path,
        """
        projects: [{name: acme}]
        keypairs: [{name: k, public_key_file: k.pub}]
        networks: [{name: net, project: acme}]
        security_groups:
          - name: sg
            project: acme
            rules: [{protocol: tcp, port: 22}, {direction: egress, ethertype: IPv6}]
        servers:
          - {name: vm, project: acme, networks: [net], known_hosts: kh, security_groups: [sg]}
        """,
    )
    assert [(d.severity, d.source.line, d.summary) for d in diags] == [
        (
            "warning",
            9,
            "server vm cannot be created without flavor; "
            "fine if it already exists (managed: false says it must)",
        )
    ]
    acme = Ref(Address("projects", ("acme",)))
    assert m.get(acme.address).spec == {"name": "acme"}  # nothing filled in
    (keypair,) = m.of_kind("keypairs")
    assert keypair.spec["public_key_file"] == str(tmp_path / "k.pub")
    sg = m.get(Address("security_groups", ("acme", "sg"))).spec
    assert sg["rules"] == [
        {
            "protocol": "tcp",
            "port_range_min": 22,
            "port_range_max": 22,
            "direction": "ingress",
            "ethertype": "IPv4",
        },
        {"direction": "egress", "ethertype": "IPv6"},
    ]
    vm = m.get(Address("servers", ("acme", "vm"))).spec
    assert vm["networks"] == [{"network": Ref(Address("networks", ("acme", "net")))}]
    assert vm["security_groups"] == [Ref(Address("security_groups", ("acme", "sg")))]
    assert vm["known_hosts"] == str(tmp_path / "kh")
    assert vm["project"] == acme


def test_references_prefer_the_referrers_scope():
    m, diags = manifest.load([str(CASES / "valid" / "domains-and-scopes.yaml")])
    assert diags == []
    partners_acme = Ref(Address("projects", ("partners", "acme")))
    alice = m.get(Address("users", ("partners", "alice")))
    assert alice.spec["default_project"] == partners_acme
    assert alice.spec["domain"] == Ref(Address("domains", ("partners",)))
    dev = m.get(Address("projects", ("partners", "acme-dev")))
    assert dev.spec["parent"] == partners_acme
    bob = m.get(Address("users", ("bob",)))
    assert bob.spec["default_project"] == partners_acme
    ops = m.get(Address("groups", ("ops",)))
    assert ops.spec["domain"] == Ref(Address("domains", ("Default",)))
    assert ops.spec["members"] == [
        Ref(Address("users", ("bob",))),
        Ref(Address("users", ("partners", "alice"))),
    ]
    # The Default domain is builtin: referenced, never a resource.
    assert Address("domains", ("Default",)) in m.builtins
    assert Address("domains", ("Default",)) not in m.resources


def test_resources_come_in_section_order_across_files():
    m, diags = manifest.load([str(CASES / "valid" / "folder")])
    assert diags == []
    assert [str(a) for a in m.resources] == [
        "projects.acme",
        "networks.acme/net",
        "subnets.acme/subnet",
    ]
    assert [Path(f).name for f in m.files] == ["10-identity.yaml", "net.yml"]


def test_several_paths_merge_and_duplicates_name_both_files(tmp_path):
    a = write(tmp_path, "projects: [{name: acme}]", "a.yaml")
    b = write(tmp_path, "projects:\n  - name: demo\n  - name: acme\n", "b.yaml")
    m, diags = manifest.load([a, b, a])  # a path given twice is read once
    (d,) = diags
    assert d.source == Source(b, 3, 5)
    assert f"already declared at {a}:1:12" in d.summary
    assert sorted(str(x) for x in m.resources) == ["projects.acme", "projects.demo"]


def test_manifest_is_returned_despite_schema_errors_but_not_parse_errors(tmp_path):
    m, diags = load_text(tmp_path, "projects: [{name: acme, enabled: maybe}]")
    assert m is not None and errors(diags)
    m, diags = load_text(tmp_path, "projects: [{name: acme}")
    assert m is None and errors(diags)


# --- the examples ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["demo.yaml", "seed-acme.yaml", "kolla-init-runonce.yaml", "project-vending.yaml"]
)
def test_examples_are_valid(name):
    start = time.perf_counter()
    env = {"ACME_ADMIN_PASSWORD": SECRET, "TEAM_A_ADMIN_PASSWORD": SECRET}
    m, diags = manifest.load([str(EXAMPLES / name)], environ=env)
    assert diags == [], "\n".join(d.format() for d in diags)
    g, more = graph.build(m)
    assert more == []
    assert graph.stages(g)
    assert time.perf_counter() - start < 2.0
    first = (EXAMPLES / name).read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/manifest.schema.json"


def test_seed_acme_needs_its_password_variable():
    m, diags = manifest.load([str(EXAMPLES / "seed-acme.yaml")], environ={})
    (d,) = diags
    assert "ACME_ADMIN_PASSWORD" in d.summary and d.address == "users.acme-admin"
    assert d.source.line > 1


def test_a_failing_natural_key_is_reported_not_dropped(tmp_path, monkeypatch):
    from bootstrap.drivers.regions import RegionDriver

    def broken(cls, spec):
        raise KeyError("oops")

    monkeypatch.setattr(RegionDriver, "natural_key", classmethod(broken))
    m, diags = load_text(tmp_path, "regions:\n  - id: RegionTwo\n")
    (d,) = diags
    assert d.is_error and d.source.line == 2 and d.address == "regions[0]"
    assert "internal error: cannot compute the natural key of this region" in d.summary


def test_a_resource_that_cannot_be_created_is_a_warning_unless_only_looked_up(tmp_path):
    m, diags = load_text(
        tmp_path,
        """
        images:
          - name: cirros
          - {name: ubuntu, managed: false}
          - {name: old, state: absent}
        """,
    )
    (d,) = diags
    assert d.severity == "warning" and d.address == "images.cirros"
    assert (d.source.line, d.source.column) == (2, 5)
    assert "cannot be created without disk_format and source" in d.summary
    driver = registry()["images"]
    assert driver.missing_for_create(m.get(Address("images", ("cirros",)))) == [
        "disk_format",
        "source",
    ]
