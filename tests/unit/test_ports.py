"""Ports: what a deleted project takes along, and a server's NIC given as a port."""

from __future__ import annotations

from bootstrap.drivers.ports import PortDriver, pairs
from bootstrap.drivers.servers import ServerDriver
from bootstrap.model import Address, Ref, Resource
from bootstrap.plan import Observed, Resolver


def port(owner=None, managed=False):
    fields = {"name": "p", "project_id": "p1", "device_owner": owner}
    return Observed("port1", fields, None, managed, None)


def test_ports_a_device_owns_are_not_counted_in_a_deleted_project():
    d = PortDriver()
    # DHCP and router ports go with their network and router; a server's own NIC with it.
    assert d.project_of(port("network:dhcp")) is None
    assert d.project_of(port("compute:nova")) is None
    # Someone's standalone port blocks the delete; the tool's own go first.
    assert d.project_of(port(None)) == "p1"
    assert d.project_of(port("compute:nova", managed=True)) == "p1"


def test_allowed_pairs_on_the_ports_own_mac_and_host_prefixes():
    own = "fa:16:3e:00:00:01"
    written = [{"ip_address": "10.0.0.5/32", "mac_address": "FA:16:3E:00:00:01"}]
    assert pairs(written, own) == [{"ip_address": "10.0.0.5"}]
    assert pairs([{"ip_address": "10.0.0.7/24"}]) == [{"ip_address": "10.0.0.0/24"}]
    other = [{"ip_address": "fd00::1/128", "mac_address": "fa:16:3e:00:00:02"}]
    assert pairs(other, own) == [{"ip_address": "fd00::1", "mac_address": "fa:16:3e:00:00:02"}]


def test_a_server_attached_by_port_is_compared_by_the_ports_network_and_address():
    net = Address("networks", ("acme", "net"))
    vip = Address("ports", ("acme", "nic"))
    port_res = Resource(
        vip,
        {
            "name": "nic",
            "project": Ref(Address("projects", ("acme",))),
            "network": Ref(net),
            "fixed_ips": [
                {"subnet": Ref(Address("subnets", ("acme", "s"))), "ip_address": "10.0.0.20"}
            ],
        },
    )
    server = Resource(
        Address("servers", ("acme", "vm")),
        {
            "name": "vm",
            "project": Ref(Address("projects", ("acme",))),
            "networks": [{"port": Ref(vip)}],
        },
    )
    resolver = Resolver({Address("projects", ("acme",)): "p1", vip: "port1"}, {vip: port_res})
    d = ServerDriver()
    assert d.desired(server, resolver)["networks"] == [{"network": "net", "fixed_ip": "10.0.0.20"}]
    assert d.create_args(server, d.desired(server, resolver), resolver)["nics"] == [
        {"port-id": "port1"}
    ]
    seen = [{"network": "net", "fixed_ips": ["10.0.0.20"]}]
    assert d.equal("networks", d.desired(server, resolver)["networks"], seen)
    assert not d.equal(
        "networks",
        d.desired(server, resolver)["networks"],
        [{"network": "net", "fixed_ips": ["10.0.0.21"]}],
    )
