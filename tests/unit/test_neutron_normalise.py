"""The network drivers: rule spellings, automatic rules, address shapes, and the steps
they plan (read from raw sdk-shaped objects the way read_all sees them) and run."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bootstrap.drivers import security_groups as sg
from bootstrap.drivers._neutron import MARKER_TAG, cidr, ip, project_scoped_address
from bootstrap.drivers.floating_ips import FloatingIPDriver
from bootstrap.drivers.networks import NetworkDriver
from bootstrap.drivers.routers import RouterDriver, gateway, gateway_info
from bootstrap.errors import CloudError, Conflict
from bootstrap.model import Address, Ref, Resource
from bootstrap.plan import Action, Observed, Pending, Resolver, SetDelta


@pytest.mark.parametrize(
    ("value", "ethertype", "expected"),
    [
        (None, "IPv4", None),
        ("any", "IPv4", None),
        ("ANY", "IPv6", None),
        ("tcp", "IPv4", "tcp"),
        ("TCP", "IPv4", "tcp"),
        (6, "IPv4", "tcp"),
        ("6", "IPv4", "tcp"),
        (1, "IPv4", "icmp"),
        ("icmp", "IPv6", "ipv6-icmp"),  # Neutron converts legacy IPv6 ICMP spellings
        ("icmpv6", "IPv6", "ipv6-icmp"),
        (58, "IPv6", "ipv6-icmp"),
        ("1", "IPv6", "ipv6-icmp"),
        (0, "IPv4", "0"),  # protocol 0 is a protocol, not "any", for Neutron
        (200, "IPv4", "200"),
        (132, "IPv4", "sctp"),
    ],
)
def test_protocol_spellings(value, ethertype, expected):
    assert sg.protocol(value, ethertype) == expected


def test_rule_normalisation_shorthands_and_anywhere():
    assert sg.normalise_rule({"protocol": "tcp", "port": 22}) == {
        "direction": "ingress",
        "ethertype": "IPv4",
        "protocol": "tcp",
        "port_range_min": 22,
        "port_range_max": 22,
    }
    # The whole port range is no range; anywhere is no prefix.
    assert sg.normalise_rule(
        {"protocol": "udp", "port_range_min": 1, "port_range_max": 65535}
    ) == sg.normalise_rule({"protocol": "udp"})
    assert sg.normalise_rule({"remote_ip_prefix": "0.0.0.0/0"}) == sg.normalise_rule({})
    assert sg.normalise_rule(
        {"ethertype": "IPv6", "remote_ip_prefix": "::/0"}
    ) == sg.normalise_rule({"ethertype": "IPv6"})
    # A bare address is its /32, as Neutron stores it.
    assert sg.normalise_rule({"remote_ip_prefix": "192.0.2.7"})["remote_ip_prefix"] == (
        "192.0.2.7/32"
    )
    # A narrower prefix stays a different rule.
    assert sg.rule_key(sg.normalise_rule({"remote_ip_prefix": "10.0.0.0/8"})) != sg.rule_key(
        sg.normalise_rule({})
    )


def test_description_only_compared_when_given():
    assert "description" not in sg.normalise_rule({"protocol": "tcp"})
    assert sg.normalise_rule({"protocol": "tcp"}, observed=True)["description"] == ""
    live = sg.normalise_rule({"protocol": "tcp", "description": "x"}, observed=True)
    assert sg.rule_key(live) == sg.rule_key(sg.normalise_rule({"protocol": "tcp"}))


def test_duplicate_manifest_rules_collapse():
    rules = sg.normalise_rules([{"protocol": 6, "port": 22}, {"protocol": "tcp", "port": 22}])
    assert len(rules) == 1


def test_automatic_rules_from_the_template():
    classic = sg.automatic_rules(sg.CLASSIC_TEMPLATE, "g1", is_default=False)
    assert classic == [
        {"direction": "egress", "ethertype": "IPv4"},
        {"direction": "egress", "ethertype": "IPv6"},
    ]
    default = sg.automatic_rules(sg.CLASSIC_TEMPLATE, "g1", is_default=True)
    assert {"direction": "ingress", "ethertype": "IPv4", "remote_group": "g1"} in default
    assert len(default) == 4


def test_template_from_api_maps_fields():
    api = [
        {
            "direction": "ingress",
            "ethertype": "IPv6",
            "protocol": None,
            "remote_group_id": "PARENT",
            "used_in_default_sg": True,
            "used_in_non_default_sg": False,
        }
    ]
    assert sg.automatic_rules(sg.template_from_api(api), "g9", True) == [
        {"direction": "ingress", "ethertype": "IPv6", "remote_group": "g9"}
    ]
    assert sg.automatic_rules(sg.template_from_api(api), "g9", False) == []


def test_effective_rules_hide_automatic_unless_listed():
    obs = Observed(
        "g1",
        {
            "name": "web",
            "rules": [
                {"direction": "egress", "ethertype": "IPv4", "description": ""},
                {
                    "direction": "ingress",
                    "ethertype": "IPv4",
                    "protocol": "tcp",
                    "description": "d",
                },
            ],
        },
    )
    want = sg.normalise_rules([{"protocol": "tcp"}])
    assert sg.effective_rules(obs, want) == want
    want2 = sg.normalise_rules([{"protocol": "tcp"}, {"direction": "egress"}])
    assert sg.effective_rules(obs, want2) == want2


def test_address_spellings():
    assert ip("2001:DB8:0::1") == "2001:db8::1"
    assert cidr("2001:DB8::/64") == "2001:db8::/64"
    assert cidr("10.0.0.5/24") == "10.0.0.0/24"
    assert ip(None) is None


def test_router_gateway_shapes():
    assert gateway(None) is None
    assert gateway({}) is None
    assert gateway({"network_id": "n", "enable_snat": True, "external_fixed_ips": []}) == {
        "network": "n",
        "enable_snat": True,
    }
    assert gateway_info(None) == {}
    assert gateway_info({"network": "n"}) == {"network_id": "n"}  # no admin-only snat flag
    assert gateway_info({"network": "n", "enable_snat": False}) == {
        "network_id": "n",
        "enable_snat": False,
    }


def test_pruned_addresses():
    obs = Observed("n1", {"name": "net", "project_id": "p1"})
    assert str(project_scoped_address("networks", obs)) == "networks.p1/net"
    fip = Observed("f1", {"project_id": "p1", "address": "203.0.113.5"})
    assert str(FloatingIPDriver().address_of_observed(fip)) == "floating_ips.p1/203.0.113.5"


# --- planned steps from raw observations ----------------------------------------------


def raw_group(gid="sg1", name="web", project="p1", description=""):
    return SimpleNamespace(
        id=gid, name=name, project_id=project, description=description, stateful=True, tags=[]
    )


def raw_rule(rid, direction="ingress", ethertype="IPv4", protocol=None, lo=None, hi=None,
             prefix=None, remote=None, description=""):  # fmt: skip
    return {
        "id": rid,
        "direction": direction,
        "ethertype": ethertype,
        "protocol": protocol,
        "port_range_min": lo,
        "port_range_max": hi,
        "remote_ip_prefix": prefix,
        "remote_group_id": remote,
        "description": description,
    }


def group_resource(name="web", **spec):
    project = Ref(Address("projects", ("acme",)))
    full = {"name": name, "project": project, **spec}
    return Resource(sg.SecurityGroupDriver.address(full), full)


def test_rule_removals_carry_the_live_ids_and_adds_are_api_bodies():
    driver = sg.SecurityGroupDriver()
    live = driver.observe(
        raw_group(),
        [
            raw_rule("r-egress", direction="egress"),
            raw_rule("r-telnet", protocol="tcp", lo=23, hi=23),
            raw_rule("r-ssh", protocol="tcp", lo=22, hi=22, description="old"),
        ],
        sg.automatic_rules(sg.CLASSIC_TEMPLATE, "sg1", False),
    )
    res = group_resource(
        rules=[
            {"protocol": "tcp", "port": 22, "description": "ssh"},
            {"protocol": "tcp", "port": 443, "remote_ip_prefix": "0.0.0.0/0"},
        ]
    )
    change = driver.diff(res, live, Resolver({Address("projects", ("acme",)): "p1"}))
    assert change.action is Action.UPDATE
    (step,) = change.steps
    delta = step.args["rules"]
    assert isinstance(delta, SetDelta)
    # Neutron's egress rule is neither removed nor drift; the telnet rule and the ssh
    # rule whose description changes are removed by their ids.
    assert sorted(r["id"] for r in delta.remove) == ["r-ssh", "r-telnet"]
    assert sorted(delta.add, key=lambda b: b["port_range_min"]) == [
        {
            "security_group_id": "sg1",
            "direction": "ingress",
            "ether_type": "IPv4",
            "protocol": "tcp",
            "port_range_min": 22,
            "port_range_max": 22,
            "description": "ssh",
            "project_id": "p1",
        },
        {
            "security_group_id": "sg1",
            "direction": "ingress",
            "ether_type": "IPv4",
            "protocol": "tcp",
            "port_range_min": 443,
            "port_range_max": 443,
            "project_id": "p1",
        },
    ]


def test_customised_template_read_with_the_groups_is_not_drift():
    driver = sg.SecurityGroupDriver()
    template = sg.template_from_api(
        [
            {"direction": "egress", "ethertype": "IPv4", "used_in_non_default_sg": True},
            {
                "direction": "ingress",
                "ethertype": "IPv4",
                "protocol": "tcp",
                "port_range_min": 22,
                "port_range_max": 22,
                "used_in_non_default_sg": True,
            },
        ]
    )
    live = driver.observe(
        raw_group(),
        [raw_rule("e4", direction="egress"), raw_rule("ssh", protocol="tcp", lo=22, hi=22)],
        sg.automatic_rules(template, "sg1", False),
    )
    res = group_resource(rules=[])
    change = driver.diff(res, live, Resolver({Address("projects", ("acme",)): "p1"}))
    assert change.action is Action.NOOP


class FakeNetwork:
    """Records the openstacksdk network calls a driver makes."""

    def __init__(self, fail: dict | None = None):
        self.calls: list[tuple] = []
        self.fail = fail or {}

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls.append((name, *[getattr(a, "id", a) for a in args], kwargs))
            if name in self.fail:
                raise self.fail[name]
            if name == "security_groups":
                return [SimpleNamespace(**vars(raw_group("sgd", "default")),
                                        security_group_rules=[])]  # fmt: skip
            if name == "create_security_group_rules":
                return iter([])
            return None

        return call


def test_update_runs_tags_then_the_put_then_removals_before_adds():
    driver = sg.SecurityGroupDriver()
    cloud = SimpleNamespace(network=FakeNetwork())
    patch = {
        "tags": SetDelta(add=(MARKER_TAG,)),
        "description": "front",
        "rules": SetDelta(add=({"direction": "ingress"},), remove=({"id": "r1"},)),
    }
    driver.update(cloud, Observed("sg1", {}), patch, None)
    assert [c[0] for c in cloud.network.calls] == [
        "add_tag",
        "update_security_group",
        "delete_security_group_rule",
        "create_security_group_rules",
    ]
    assert cloud.network.calls[0][2] == MARKER_TAG


def test_a_failed_completion_says_the_resource_was_created():
    err = Conflict("Quota exceeded for resources: ['security_group_rule'].", status=409)
    cloud = SimpleNamespace(network=FakeNetwork(fail={"create_security_group_rules": err}))
    patch = {"tags": SetDelta(add=(MARKER_TAG,)), "rules": SetDelta(add=({"a": 1},))}
    with pytest.raises(CloudError) as caught:
        sg.SecurityGroupDriver().update(cloud, Observed("sg1", {}), patch, None)
    assert "security group sg1 was created, but completing it failed" in str(caught.value)
    assert "Quota exceeded" in str(caught.value) and caught.value.status == 409
    # A plain update's error is the cloud's own.
    cloud = SimpleNamespace(network=FakeNetwork(fail={"create_security_group_rules": err}))
    with pytest.raises(CloudError) as caught:
        sg.SecurityGroupDriver().update(cloud, Observed("sg1", {}), {"rules": patch["rules"]}, None)
    assert "was created" not in str(caught.value)


def test_a_removal_without_a_live_id_fails_loudly():
    cloud = SimpleNamespace(network=FakeNetwork())
    patch = {"rules": SetDelta(remove=({"direction": "ingress", "ethertype": "IPv4"},))}
    with pytest.raises(CloudError, match="no live id"):
        sg.SecurityGroupDriver().update(cloud, Observed("sg1", {}), patch, None)
    assert cloud.network.calls == []


def test_default_group_is_adopted_never_created_nor_tagged():
    driver = sg.SecurityGroupDriver()
    res = group_resource("default", rules=[{"protocol": "tcp", "port": 22}])
    change = driver.diff(res, None, Resolver({Address("projects", ("acme",)): "p1"}))
    create, complete = change.steps
    assert create.args == {"adopt": True, "name": "default", "project_id": "p1"}
    assert "adopts" in create.note
    assert "tags" not in complete.args
    (body,) = complete.args["rules"].add
    assert body["security_group_id"] == Pending(res.address)
    cloud = SimpleNamespace(network=FakeNetwork())
    made = driver.create(cloud, create.args, None)
    assert made.id == "sgd"
    assert [c[0] for c in cloud.network.calls] == ["security_groups"]


def test_network_create_then_tag_step():
    driver = NetworkDriver()
    project = Ref(Address("projects", ("acme",)))
    res = Resource(Address("networks", ("acme", "n")), {"name": "n", "project": project})
    change = driver.diff(res, None, Resolver())
    create, tag = change.steps
    assert create.args == {"name": "n", "project_id": Pending(Address("projects", ("acme",)))}
    assert tag.args == {"tags": SetDelta(add=(MARKER_TAG,))}
    cloud = SimpleNamespace(network=FakeNetwork())
    driver.update(cloud, Observed("n1", {}), tag.args, None)
    assert [c[0] for c in cloud.network.calls] == ["add_tag"]


def test_router_interfaces_and_delete():
    driver = RouterDriver()
    cloud = SimpleNamespace(network=FakeNetwork())
    patch = {"is_admin_state_up": False, "interfaces": SetDelta(add=("sb",), remove=("sa",))}
    driver.update(cloud, Observed("r1", {}), patch, None)
    assert cloud.network.calls == [
        ("update_router", "r1", {"is_admin_state_up": False}),
        ("remove_interface_from_router", "r1", {"subnet": "sa"}),
        ("add_interface_to_router", "r1", {"subnet": "sb"}),
    ]
    # Delete: the interface ports seen by the plan's read go first.
    cloud = SimpleNamespace(network=FakeNetwork())
    driver.delete(cloud, Observed("r1", {}, {"router": None, "ports": ["p1", "p2"]}), None)
    assert cloud.network.calls == [
        ("remove_interface_from_router", "r1", {"port": "p1"}),
        ("remove_interface_from_router", "r1", {"port": "p2"}),
        ("delete_router", "r1", {"ignore_missing": False}),
    ]


class PagedNeutron:
    """Neutron's JSON lists in pages joined by `<key>_links` next links."""

    def __init__(self, key, pages):
        self.key, self.pages, self.asked = key, pages, []

    def get(self, url, params=None):
        self.asked.append((url, params))
        i = len(self.asked) - 1
        body = {self.key: self.pages[i]}
        if i + 1 < len(self.pages):
            body[f"{self.key}_links"] = [{"rel": "next", "href": f"http://n/v2.0/x?marker={i}"}]
        return SimpleNamespace(status_code=200, json=lambda: body)


def test_a_json_list_reads_like_the_sdk_and_follows_next_links():
    from openstack.network.v2.network import Network

    from bootstrap.drivers._neutron import list_all

    first = {"id": "n1", "name": "a", "admin_state_up": False, "router:external": True,
             "tenant_id": "t1"}
    cloud = SimpleNamespace(network=PagedNeutron("networks", [[first], [{"id": "n2"}]]))
    one, two = list_all(cloud, Network, fields=["id"])
    # The SDK's attribute names, read through its own descriptors: the same values.
    assert (one.is_admin_state_up, one.is_router_external) == (False, True)
    sdk = Network(**first)
    for name in ("name", "project_id", "mtu", "is_shared", "provider_network_type", "tags"):
        assert getattr(one, name) == getattr(sdk, name), name
    assert two.name is None and two.is_admin_state_up is None
    assert cloud.network.asked == [("/networks", {"fields": ["id"]}),
                                   ("http://n/v2.0/x?marker=0", None)]
    with pytest.raises(AttributeError):
        _ = one.not_an_attribute
    # The driver observes a record as it observed the SDK's resource.
    assert NetworkDriver().observe(Network(**first)).fields == NetworkDriver().observe(one).fields
