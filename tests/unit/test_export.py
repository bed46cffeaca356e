"""bootstrap export, the pure part: observations -> manifest document.

Observations are built the way the drivers' `observe` leaves them (ids for references,
server-side defaults filled in); the export must read them back by name, leave the
defaults out, make lookups of what is outside the scope, and plan to 0 changes against
the very same observations.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import jsonschema
import pytest
import yaml

from bootstrap import engine
from bootstrap.export import ExportError, Scope, build
from bootstrap.plan import Observed

REPO = Path(__file__).resolve().parents[2]
DEFAULT = "default"


def project(pid, name, **kw):
    f = {"name": name, "domain_id": DEFAULT, "description": "", "enabled": True,
         "parent": None, "tags": []}
    return Observed(pid, {**f, **kw})


def network(nid, name, pid, **kw):
    f = {"name": name, "project_id": pid, "description": "", "admin_state_up": True,
         "shared": False, "external": False, "mtu": 1442, "port_security_enabled": True,
         "provider": {"network_type": "geneve", "physical_network": None,
                      "segmentation_id": 7}}
    return Observed(nid, {**f, **kw})


def subnet(sid, name, pid, nid, cidr="10.0.0.0/24", **kw):
    f = {"name": name, "project_id": pid, "network": nid, "cidr": cidr, "ip_version": 4,
         "gateway_ip": "10.0.0.1", "enable_dhcp": True, "dns_nameservers": [],
         "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.254"}],
         "host_routes": [], "description": ""}
    return Observed(sid, {**f, **kw})


def uid(n):
    return f"{n:08x}-0000-4000-8000-000000000000"


def cloud():
    """Two projects (acme, other) and the operators' admin project with its external
    network; acme's router uses it."""
    return {
        "domains": [Observed(DEFAULT, {"name": "Default", "description": "", "enabled": True})],
        "projects": [
            project(uid(1), "admin"),
            project(uid(2), "acme", description="ACME"),
            project(uid(3), "other"),
        ],
        "users": [
            Observed(uid(10), {"name": "alice", "domain_id": DEFAULT, "email": None,
                               "description": "", "enabled": True,
                               "default_project": uid(2)}),
        ],
        "networks": [
            network(uid(20), "public", uid(1), external=True),
            network(uid(21), "app", uid(2), shared=True),
            network(uid(22), "app", uid(3)),
        ],
        "subnets": [subnet(uid(30), "app-sub", uid(2), uid(21), dns_nameservers=["192.0.2.53"])],
        "routers": [
            Observed(uid(40), {"name": "r1", "project_id": uid(2), "description": "",
                               "admin_state_up": True,
                               "external_gateway": {"network": uid(20), "enable_snat": True},
                               "interfaces": [uid(30)]}),
        ],
    }


@pytest.fixture
def drivers():
    return engine.instantiate_drivers()


def export(observed, drivers, **scope):
    stack = scope.pop("stack", None)
    return build(observed, drivers, Scope(**scope), DEFAULT, stack)


def by_name(doc, kind, name, **match):
    return next(
        e for e in doc[kind] if e["name"] == name and all(e.get(k) == v for k, v in match.items())
    )


def test_references_are_names_and_defaults_are_left_out(drivers):
    doc = export(cloud(), drivers, projects=("acme",)).document
    assert by_name(doc, "subnets", "app-sub") == {
        "name": "app-sub", "project": "acme", "network": "app", "cidr": "10.0.0.0/24",
        "dns_nameservers": ["192.0.2.53"],
    }
    # Only what differs from Neutron's defaults; the MTU and provider are its choice.
    assert by_name(doc, "networks", "app", project="acme") == {
        "name": "app", "project": "acme", "shared": True,
    }
    assert by_name(doc, "routers", "r1") == {
        "name": "r1", "project": "acme", "interfaces": ["app-sub"],
        "external_gateway": {"network": "public"},
    }


def test_what_lies_outside_the_scope_is_a_lookup(drivers):
    result = export(cloud(), drivers, projects=("acme",))
    doc = result.document
    assert {"name": "public", "project": "admin", "managed": False} in doc["networks"]
    assert {"name": "admin", "managed": False} in doc["projects"]
    assert sorted(result.lookups) == ["networks.admin/public", "projects.admin"]
    # Another project's resources are neither exported nor looked up.
    assert all(n.get("project") != "other" for n in doc["networks"])


def test_kind_filter_turns_references_to_other_kinds_into_lookups(drivers):
    doc = export(cloud(), drivers, projects=("acme",), kinds=("subnets",)).document
    assert set(doc) == {"version", "projects", "networks", "subnets"}
    assert {"name": "app", "project": "acme", "managed": False} in doc["networks"]
    assert {"name": "acme", "managed": False} in doc["projects"]


def test_a_shared_name_is_qualified_by_its_project(drivers):
    observed = cloud()
    observed["subnets"].append(subnet(uid(31), "other-sub", uid(3), uid(22)))
    doc = export(observed, drivers).document
    assert by_name(doc, "subnets", "app-sub")["network"] == {"name": "app", "project": "acme"}
    assert by_name(doc, "subnets", "other-sub")["network"] == {"name": "app", "project": "other"}


def test_passwords_are_named_placeholders_set_on_create(drivers):
    result = export(cloud(), drivers, projects=("acme",))
    alice = by_name(result.document, "users", "alice")
    assert alice["password"] == {"env": "PASSWORD_ALICE"}
    assert alice["update_password"] == "on_create"
    assert alice["default_project"] == "acme"
    assert result.env == {"PASSWORD_ALICE": "users.alice password"}


def test_output_is_stable_whatever_order_the_lists_came_in(drivers):
    first = export(cloud(), drivers).to_yaml()
    for seed in range(5):
        observed = cloud()
        for items in observed.values():
            random.Random(seed).shuffle(items)
        assert export(observed, drivers).to_yaml() == first


def test_stack_is_written_when_given(drivers):
    assert export(cloud(), drivers, stack="acme").document["stack"] == "acme"
    assert "stack" not in export(cloud(), drivers).document


def test_kinds_without_export_support_are_named(drivers):
    result = export(cloud(), drivers)
    assert "endpoints" in result.not_exported
    assert "networks" not in result.not_exported


def test_unknown_project_is_an_error(drivers):
    with pytest.raises(ExportError, match="no project named 'nope'"):
        export(cloud(), drivers, projects=("nope",))


def test_the_document_validates_against_the_published_schema(drivers):
    schema = json.loads((REPO / "schemas" / "manifest.schema.json").read_text())
    doc = yaml.safe_load(export(cloud(), drivers, stack="acme").to_yaml())
    jsonschema.Draft202012Validator(schema).validate(doc)


def test_the_export_plans_to_no_changes_against_its_own_facts(drivers):
    observed = cloud()
    result = export(observed, drivers)
    assert engine.verify_export(result, drivers, observed) == []


def test_the_offline_round_trip_notices_a_difference(drivers):
    observed = cloud()
    result = export(observed, drivers, projects=("acme",))
    by_name(result.document, "networks", "app", project="acme")["shared"] = False
    problems = engine.verify_export(result, drivers, observed)
    assert problems == [
        "planning the export would change networks.acme/app (update: shared)"
    ]


def grant(role, user, pid):
    fields = {"role_id": role, "user_id": user, "group_id": None, "project_id": pid,
              "domain_id": None, "system": None, "inherited": False}
    return Observed("|".join(str(fields[k]) for k in sorted(fields)), fields)


def test_a_team_member_is_exported_and_a_shared_admin_is_looked_up(drivers):
    observed = cloud()
    observed["roles"] = [Observed(uid(50), {"name": "member", "domain_id": None,
                                            "description": ""})]
    observed["users"] += [
        Observed(uid(11), {"name": "bob", "domain_id": DEFAULT, "email": None,
                           "description": "", "enabled": True, "default_project": None}),
        Observed(uid(12), {"name": "admin", "domain_id": DEFAULT, "email": None,
                           "description": "", "enabled": True, "default_project": None}),
    ]
    observed["role_assignments"] = [
        grant(uid(50), uid(11), uid(2)),  # bob: only on acme
        grant(uid(50), uid(12), uid(2)),  # admin: on acme and on admin
        grant(uid(50), uid(12), uid(1)),
    ]
    doc = export(observed, drivers, projects=("acme",)).document
    assert by_name(doc, "users", "bob")["password"] == {"env": "PASSWORD_BOB"}
    assert {"name": "admin", "managed": False} in doc["users"]
    assert {"name": "member", "managed": False} in doc["roles"]
    assert doc["role_assignments"] == [
        {"role": "member", "user": "admin", "project": "acme"},
        {"role": "member", "user": "bob", "project": "acme"},
    ]


def test_rules_neutron_made_are_left_out_and_a_remote_group_is_named(drivers):
    observed = cloud()
    sg = uid(60)
    rules = [
        {"direction": "egress", "ethertype": "IPv4", "description": ""},
        {"direction": "egress", "ethertype": "IPv6", "description": ""},
        {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
         "port_range_min": 22, "port_range_max": 22, "remote_group": sg, "description": "ssh"},
    ]
    observed["security_groups"] = [
        Observed(sg, {"name": "web", "project_id": uid(2), "description": "",
                      "stateful": True, "rules": rules})
    ]
    doc = export(observed, drivers, projects=("acme",)).document
    assert doc["security_groups"] == [{
        "name": "web", "project": "acme",
        "rules": [{"protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
                   "remote_group": "web", "description": "ssh"}],
    }]


def test_a_gateway_and_pools_neutron_did_not_choose_are_kept(drivers):
    observed = cloud()
    observed["subnets"] = [subnet(uid(30), "s", uid(2), uid(21), gateway_ip="10.0.0.254",
                                  allocation_pools=[{"start": "10.0.0.2",
                                                     "end": "10.0.0.253"}])]
    s = by_name(export(observed, drivers, projects=("acme",)).document, "subnets", "s")
    assert s["gateway_ip"] == "10.0.0.254"
    assert s["allocation_pools"] == [{"start": "10.0.0.2", "end": "10.0.0.253"}]


def test_a_domain_scope_exports_the_domain_and_what_is_in_it(drivers):
    observed = cloud()
    observed["domains"].append(Observed(uid(70), {"name": "partners", "description": "",
                                                  "enabled": True}))
    observed["projects"].append(project(uid(71), "acme", domain_id=uid(70)))
    observed["networks"].append(network(uid(72), "p-net", uid(71)))
    result = export(observed, drivers, domains=("partners",))
    doc = result.document
    assert doc["domains"] == [{"name": "partners"}]
    assert doc["projects"] == [{"name": "acme", "domain": "partners"}]
    # The Default domain's acme is not in the export: the bare name is unambiguous.
    assert doc["networks"] == [{"name": "p-net", "project": "acme"}]
    assert engine.verify_export(result, drivers, observed) == []


def test_cli_writes_the_manifest_and_names_what_it_needs_on_stderr(
    tmp_path, capsys, monkeypatch, drivers
):
    from bootstrap import cli
    from bootstrap.cloud import Cloud

    seen = {}

    def fake_export(cloud, scope, stack=None):
        seen["scope"], seen["stack"] = scope, stack
        return export(cloud_facts, drivers, projects=scope.projects, stack=stack)

    cloud_facts = cloud()
    monkeypatch.setattr(Cloud, "connect", classmethod(lambda cls, *a, **k: object()))
    monkeypatch.setattr(engine, "export", fake_export)
    out = tmp_path / "acme.yaml"
    code = cli.main(["export", "--project", "acme", "--stack", "acme", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 0
    assert seen == {"scope": Scope(projects=("acme",)), "stack": "acme"}
    assert yaml.safe_load(out.read_text())["stack"] == "acme"
    assert "PASSWORD_ALICE" in err and "networks.admin/public" in err
    unsupported = next(line for line in err.splitlines() if line.startswith("Not exported"))
    assert "endpoints" in unsupported and "networks" not in unsupported


def test_a_server_refers_by_name_and_another_users_keypair_is_a_lookup(drivers):
    from bootstrap.drivers._nova import HIDDEN

    observed = cloud()
    observed["users"].append(
        Observed(uid(12), {"name": "admin", "domain_id": DEFAULT, "email": None,
                           "description": "", "enabled": True, "default_project": None}))
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINmwEOuXuyQMrhsB1ni5KMxP/LhDZdBjN6UYsA4fJX74"
    observed["keypairs"] = [Observed(f"{uid(12)}/k", {"name": "k", "user_id": uid(12),
                                                      "own": True, "type": "ssh",
                                                      "public_key": key})]
    observed["flavors"] = [Observed("1", {"name": "m1.tiny", "id": "1", "vcpus": 1, "ram": 512,
                                          "disk": 1, "ephemeral": 0, "swap": 0,
                                          "is_public": True, "description": "",
                                          "extra_specs": {}})]
    observed["servers"] = [Observed(uid(80), {
        "name": "web", "project_id": uid(2), "status": "ACTIVE", "image": None,
        "flavor": "m1.tiny", "keypair": "k",
        "networks": [{"network": "app", "fixed_ips": ["10.0.0.5"]}],
        "security_groups": ["default"], "metadata": {}, "availability_zone": "nova",
        "config_drive": False, "user_data": HIDDEN, "addresses": ["10.0.0.5"]})]
    observed["security_groups"] = [Observed(uid(81), {
        "name": "default", "project_id": uid(2), "description": "Default security group",
        "stateful": True, "rules": []})]
    result = export(observed, drivers, projects=("acme",))
    doc = result.document
    assert by_name(doc, "servers", "web") == {
        "name": "web", "project": "acme", "flavor": "m1.tiny", "keypair": "k",
        "networks": [{"network": "app"}], "security_groups": ["default"],
    }
    assert doc["keypairs"] == [
        {"name": "k", "user": "admin", "public_key": key, "managed": False}
    ]
    assert {"name": "m1.tiny", "managed": False} in doc["flavors"]
    assert {"name": "default", "project": "acme", "managed": False} in doc["security_groups"]
    assert engine.verify_export(result, drivers, observed) == []
