"""Pure parts of the network drivers: rule spellings, automatic rules, address shapes."""

from __future__ import annotations

import pytest

from bootstrap.drivers import security_groups as sg
from bootstrap.drivers._neutron import cidr, ip, project_scoped_address
from bootstrap.drivers.floating_ips import FloatingIPDriver
from bootstrap.drivers.routers import gateway, gateway_info
from bootstrap.plan import Observed


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
