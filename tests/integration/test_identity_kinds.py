"""Identity and catalog kinds against real Keystone.

For every kind: apply -> apply again (0 writes, 0 changes) -> change it out of band ->
the plan shows exactly that drift -> apply converges -> state: absent -> apply twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from bootstrap import cli
from tests.integration.engine_util import apply, assert_converged, connect, plan, write_manifest


@pytest.fixture(autouse=True)
def cloud_env(devcloud_clouds_yaml, monkeypatch):
    """The CLI finds the local cloud the way a user's shell would: OS_CLIENT_CONFIG_FILE."""
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(devcloud_clouds_yaml))


@dataclass
class Lifecycle:
    manifest: str  # YAML with {n} for the unique prefix
    address: str  # the resource whose lifecycle is checked
    drift: Callable  # (keystone client, prefix) -> None: an out-of-band change
    drift_fields: list[str]


def ks():
    return connect().keystone


def one(items):
    items = list(items)
    assert len(items) == 1, items
    return items[0]


LIFECYCLES = {
    "domains": Lifecycle(
        """
        domains:
          - name: {n}dom
            description: first
        """,
        "domains.{n}dom",
        lambda k, n: k.domains.update(one(k.domains.list(name=f"{n}dom")), description="x"),
        ["description"],
    ),
    "projects": Lifecycle(
        """
        projects:
          - name: {n}proj
            description: Acme Corp
            tags: [b, a]
        """,
        "projects.{n}proj",
        lambda k, n: k.projects.update(one(k.projects.list(name=f"{n}proj")), enabled=False),
        [],  # enabled is not in the manifest: not managed, not drift
    ),
    "roles": Lifecycle(
        """
        roles:
          - name: {n}role
            description: acme role
        """,
        "roles.{n}role",
        lambda k, n: k.roles.update(one(k.roles.list(name=f"{n}role")), description="hand"),
        ["description"],
    ),
    "users": Lifecycle(
        """
        projects:
          - name: {n}proj
        users:
          - name: {n}user
            email: a@example.org
            password: {{env: IT_USER_PASSWORD}}
            default_project: {n}proj
        """,
        "users.{n}user",
        lambda k, n: k.users.update(one(k.users.list(name=f"{n}user")), email="b@example.org"),
        ["email"],
    ),
    "groups": Lifecycle(
        """
        users:
          - name: {n}u1
          - name: {n}u2
        groups:
          - name: {n}grp
            members: [{n}u1, {n}u2]
        """,
        "groups.{n}grp",
        lambda k, n: k.users.remove_from_group(
            one(k.users.list(name=f"{n}u2")), one(k.groups.list(name=f"{n}grp"))
        ),
        ["members"],
    ),
    "role_assignments": Lifecycle(
        """
        projects:
          - name: {n}proj
        users:
          - name: {n}user
        roles:
          - name: member
        role_assignments:
          - role: member
            user: {n}user
            project: {n}proj
        """,
        "role_assignments.member/user:{n}user/project:{n}proj",
        lambda k, n: k.roles.revoke(
            one(k.roles.list(name="member")),
            user=one(k.users.list(name=f"{n}user")),
            project=one(k.projects.list(name=f"{n}proj")),
        ),
        None,  # revoked: the plan creates it again
    ),
    "regions": Lifecycle(
        """
        regions:
          - id: {n}Region
            description: second region
        """,
        "regions.{n}Region",
        lambda k, n: k.regions.update(f"{n}Region", description="hand"),
        ["description"],
    ),
    "services": Lifecycle(
        """
        services:
          - name: {n}svc
            type: {n}type
            description: a service
        """,
        "services.{n}svc",
        lambda k, n: k.services.update(one(k.services.list(name=f"{n}svc")), enabled=False),
        [],
    ),
    "endpoints": Lifecycle(
        """
        regions:
          - id: RegionOne
        services:
          - name: {n}svc
            type: {n}type
        endpoints:
          - service: {n}svc
            interface: public
            region: RegionOne
            url: http://127.0.0.1:1/{n}
        """,
        "endpoints.{n}svc/public/RegionOne",
        lambda k, n: k.endpoints.update(
            one(k.endpoints.list(service=one(k.services.list(name=f"{n}svc")))),
            url="http://127.0.0.1:2/hand",
        ),
        ["url"],
    ),
}


def absent_version(text: str, address: str) -> str:
    """The manifest with `state: absent` added to the checked resource only."""
    kind = address.split(".", 1)[0]
    out, in_kind, done = [], False, False
    for line in text.splitlines():
        out.append(line)
        if line.strip() == f"{kind}:":
            in_kind = True
        elif in_kind and not done and line.strip().startswith("- "):
            indent = len(line) - len(line.lstrip()) + 2
            out.append(" " * indent + "state: absent")
            done = True
    return "\n".join(out) + "\n"


@pytest.mark.lifecycle(
    "domains",
    "projects",
    "roles",
    "users",
    "groups",
    "role_assignments",
    "regions",
    "services",
    "endpoints",
)
@pytest.mark.parametrize("kind", sorted(LIFECYCLES))
def test_lifecycle(kind, tmp_path, unique_name, monkeypatch):
    monkeypatch.setenv("IT_USER_PASSWORD", "it-Secret-9")
    lc = LIFECYCLES[kind]
    n = unique_name
    text = lc.manifest.replace("{n}", n).replace("{{", "{").replace("}}", "}")
    address = lc.address.replace("{n}", n)
    path = write_manifest(tmp_path, text)
    cleanup = write_manifest(tmp_path, _all_absent(text), "cleanup.yaml")
    try:
        first = apply(path)
        assert first.result is not None and first.result.ok, first.result
        assert first.actions().get(address) == "create"
        assert_converged(path)

        lc.drift(ks(), n)
        drifted = plan(path)
        changes = {str(c.address): c for c in drifted.changes if c.is_change}
        if lc.drift_fields is None:
            assert {a: c.action.value for a, c in changes.items()} == {address: "create"}
        elif lc.drift_fields == []:
            assert changes == {}, "an unmanaged field changed: not drift"
        else:
            assert list(changes) == [address]
            assert sorted(d.field for d in changes[address].fields) == lc.drift_fields
        apply(path)
        assert_converged(path)

        gone = write_manifest(tmp_path, absent_version(text, address), "absent.yaml")
        removed = apply(gone)
        assert removed.actions()[address] == "delete"
        assert removed.result.ok
        again = apply(gone)
        assert again.actions() == {} and again.writes == 0
    finally:
        apply(cleanup)


def _all_absent(text: str) -> str:
    """Every resource of the manifest absent, except shared ones (member, RegionOne)."""
    out = []
    for line in text.splitlines():
        out.append(line)
        stripped = line.strip()
        if stripped.startswith("- ") and stripped not in ("- name: member", "- id: RegionOne"):
            out.append(" " * (len(line) - len(line.lstrip()) + 2) + "state: absent")
    return "\n".join(out) + "\n"


def test_password_update_always_detects_drift(tmp_path, unique_name, monkeypatch):
    n = unique_name
    monkeypatch.setenv("IT_USER_PASSWORD", "first-Secret-1")
    text = f"""
    projects:
      - name: {n}proj
    users:
      - name: {n}user
        password: {{env: IT_USER_PASSWORD}}
        update_password: always
    """
    path = write_manifest(tmp_path, text)
    try:
        assert apply(path).result.ok
        assert_converged(path)
        monkeypatch.setenv("IT_USER_PASSWORD", "second-Secret-2")
        drifted = plan(path)
        (change,) = [c for c in drifted.changes if c.is_change]
        assert [d.field for d in change.fields] == ["password"]
        assert "second-Secret-2" not in json.dumps(drifted.to_json([]))
        apply(path)
        assert_converged(path)
    finally:
        apply(write_manifest(tmp_path, _all_absent(text), "cleanup.yaml"))


def test_prune_deletes_only_managed(tmp_path, unique_name):
    """--prune of a stack deletes its own dropped resource, never a foreign one.

    With a stack of its own (the run's unique name), the prune is safe on a shared cloud:
    other runs' resources carry other stacks (or none) and are not touched.
    """
    n = unique_name
    stack = f"{n}stack"
    keystone = ks()
    foreign = keystone.projects.create(f"{n}foreign", "default")
    both = write_manifest(
        tmp_path,
        f"stack: {stack}\nprojects:\n  - name: {n}keep\n  - name: {n}drop\n",
        "both.yaml",
    )
    only_keep = write_manifest(
        tmp_path, f"stack: {stack}\nprojects:\n  - name: {n}keep\n", "keep.yaml"
    )
    try:
        assert apply(both).result.ok
        run = apply(only_keep, prune=True)
        deleted = [str(c.address) for c in run.plan.changes if c.action.value == "delete"]
        assert deleted == [f"projects.{n}drop"]  # only this stack's, nothing of other runs
        names = {p.name for p in keystone.projects.list()}
        assert f"{n}keep" in names and f"{n}foreign" in names and f"{n}drop" not in names
    finally:
        keystone.projects.delete(foreign)
        apply(write_manifest(tmp_path, _all_absent(f"projects:\n  - name: {n}keep\n"), "c.yaml"))


def test_failure_mid_graph_skips_only_dependents(tmp_path, unique_name):
    n = unique_name
    # Keystone refuses "/" in project tags (HTTP 400): a real failure at apply time.
    text = f"""
    projects:
      - name: {n}bad
        tags: ["no/slashes"]
      - name: {n}good
    users:
      - name: {n}needs-bad
        default_project: {n}bad
      - name: {n}needs-good
        default_project: {n}good
    """
    path = write_manifest(tmp_path, text)
    try:
        run = apply(path)
        outcomes = {str(a): r.outcome for a, r in run.result.results.items()}
        assert outcomes[f"projects.{n}bad"] == "failed"
        assert outcomes[f"users.{n}needs-bad"] == "skipped"
        assert outcomes[f"projects.{n}good"] == "created"
        assert outcomes[f"users.{n}needs-good"] == "created"
        assert len(run.result.failed) == 1
    finally:
        apply(write_manifest(tmp_path, _all_absent(text.replace('"no/slashes"', "x")), "c.yaml"))


def test_saved_plan_refused_after_cloud_changed(tmp_path, unique_name, capsys):
    n = unique_name
    path = write_manifest(tmp_path, f"projects:\n  - name: {n}p\n    description: one\n")
    saved = str(tmp_path / "plan.json")
    try:
        assert apply(path).result.ok
        path2 = write_manifest(tmp_path, f"projects:\n  - name: {n}p\n    description: two\n")
        assert cli.main(["plan", path2, "--cloud", "devcloud", "--out", saved]) == 0
        keystone = ks()
        keystone.projects.update(one(keystone.projects.list(name=f"{n}p")), description="hand")
        capsys.readouterr()
        assert cli.main(["apply", saved, "--cloud", "devcloud"]) == cli.EXIT_ERROR
        assert "changed since the plan was saved" in capsys.readouterr().err
        assert one(keystone.projects.list(name=f"{n}p")).description == "hand"
        # A fresh plan saved and applied at once goes through exactly.
        assert cli.main(["plan", path2, "--cloud", "devcloud", "--out", saved]) == 0
        assert cli.main(["apply", saved, "--cloud", "devcloud"]) == cli.EXIT_OK
        assert one(keystone.projects.list(name=f"{n}p")).description == "two"
    finally:
        apply(write_manifest(tmp_path, f"projects:\n  - name: {n}p\n    state: absent\n", "c.yaml"))


def test_detailed_exitcode(tmp_path, unique_name):
    n = unique_name
    path = write_manifest(tmp_path, f"roles:\n  - name: {n}r\n")
    try:
        assert cli.main(["plan", path, "--cloud", "devcloud", "--detailed-exitcode"]) == 2
        assert cli.main(["apply", path, "--cloud", "devcloud", "--yes"]) == 0
        assert cli.main(["plan", path, "--cloud", "devcloud", "--detailed-exitcode"]) == 0
    finally:
        apply(write_manifest(tmp_path, f"roles:\n  - name: {n}r\n    state: absent\n", "c.yaml"))


def test_seed_keystone_listings(tmp_path, unique_name, monkeypatch):
    """The seed article: an Acme tenant with an admin user and role, the identity and image
    services with endpoints, and a catalog lookup of the image endpoint as that user."""
    n = unique_name
    monkeypatch.setenv("ACME_ADMIN_PASSWORD", "acme-Secret-7")
    text = f"""
    projects:
      - name: {n}acme
        description: Acme Corp
    roles:
      - name: {n}acme-admin-role
    users:
      - name: {n}acme-admin
        password: {{env: ACME_ADMIN_PASSWORD}}
        default_project: {n}acme
    role_assignments:
      - role: {n}acme-admin-role
        user: {n}acme-admin
        project: {n}acme
    regions:
      - id: RegionOne
    services:
      - name: keystone
        type: identity
      - name: glance
        type: image
    endpoints:
      - service: glance
        interface: public
        region: RegionOne
        url: http://127.0.0.1:9292
      - service: keystone
        interface: public
        region: RegionOne
        url: http://127.0.0.1:5000/v3
    """
    path = write_manifest(tmp_path, text)
    try:
        run = apply(path)
        assert run.result.ok
        # The devcloud's catalog already has these services/endpoints: adopted, not duplicated.
        assert not any(a.startswith(("services.", "endpoints.")) for a in run.actions())
        assert_converged(path)
        auth = v3.Password(
            auth_url=connect().auth_url,
            username=f"{n}acme-admin",
            password="acme-Secret-7",
            user_domain_id="default",
            project_name=f"{n}acme",
            project_domain_id="default",
        )
        sess = ks_session.Session(auth=auth)
        assert f"{n}acme-admin-role" in auth.get_access(sess).role_names
        url = sess.get_endpoint(service_type="image", interface="public")
        assert url.rstrip("/") == "http://127.0.0.1:9292"
    finally:
        # The catalog entries belong to the local cloud: only the acme part is removed.
        acme_only = text.split("    regions:")[0]
        apply(write_manifest(tmp_path, _all_absent(acme_only), "c.yaml"))
