"""What the cloud holds under a scenario's names, read with the client libraries only
(keystoneclient, openstacksdk, glanceclient, novaclient), never through the tool; and
the clean-up of everything under those names."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "openstack-bootstrap"
TAG = "managed-by:openstack-bootstrap"
REPO = Path(__file__).resolve().parents[2]


def clouds_yaml() -> str:
    return os.environ.get("OS_CLIENT_CONFIG_FILE") or str(REPO / ".devcloud" / "clouds.yaml")


class Clients:
    """Admin clients on their own session (not the tool's), made once per test."""

    def __init__(self) -> None:
        import glanceclient
        import openstack
        import openstack.config
        from keystoneclient.v3 import client as ks_client
        from novaclient import client as nova_client

        region = openstack.config.OpenStackConfig(config_files=[clouds_yaml()]).get_one(
            "devcloud"
        )
        session = region.get_session()
        kw = {"region_name": region.get_region_name(), "interface": "public"}
        self.keystone = ks_client.Client(session=session, **kw)
        self.glance = glanceclient.Client("2", session=session, **kw)
        self.nova = nova_client.Client(
            "2.90", session=session, region_name=kw["region_name"], endpoint_type="public"
        )
        self.net = openstack.connection.Connection(config=region).network


@dataclass
class Census:
    """Counts per expected name, and the names whose ownership marker is missing."""

    counts: dict[str, int] = field(default_factory=dict)
    unmarked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> list[str]:
        return [k for k, v in self.counts.items() if v > 1]

    @property
    def missing(self) -> list[str]:
        return [k for k, v in self.counts.items() if v == 0]


def patiently(fn, *args, tries: int = 5):
    """The shared cloud, under load, sometimes resets an idle connection: read again."""
    for i in range(tries):
        try:
            return fn(*args)
        except Exception:  # noqa: BLE001 - the last one is raised
            if i == tries - 1:
                raise
            time.sleep(2)
    return None


def census(c: Clients, n: str, server: bool) -> Census:
    return patiently(_census, c, n, server)


def clean(c: Clients, n: str) -> None:
    patiently(_clean, c, n)


def _census(c: Clients, n: str, server: bool) -> Census:
    out = Census()

    def count(what: str, items: list, marked) -> None:
        out.counts[what] = len(items)
        out.unmarked += [what for i in items if not marked(i)]

    projects = [p for p in c.keystone.projects.list() if p.name == f"{n}proj"]
    count("projects", projects, lambda p: getattr(p, "managed_by", None) == MARKER)
    flavors = [f for f in c.nova.flavors.list(is_public=None) if f.name == f"{n}flv"]
    count("flavors", flavors, lambda f: True)  # flavors carry no marker
    images = [i for i in c.glance.images.list(filters={"visibility": "all"})
              if i.get("name") == f"{n}img"]
    count("images", images, lambda i: i.get("managed_by") == MARKER)
    out.notes += [f"image {i['id']} is {i['status']}" for i in images if i["status"] != "active"]
    for kind, name in (("networks", "net"), ("subnets", "sub"), ("routers", "rtr"),
                       ("security_groups", "sg")):
        items = list(getattr(c.net, kind)(name=f"{n}{name}"))
        count(kind, items, lambda r: TAG in (r.tags or []))
    for sg in c.net.security_groups(name=f"{n}sg"):
        out.counts["security_group_rules"] = len(list(c.net.security_group_rules(
            security_group_id=sg.id)))
    for sub in c.net.subnets(name=f"{n}sub"):
        ports = [p for p in c.net.ports(device_owner="network:router_interface")
                 if any(ip.get("subnet_id") == sub.id for ip in p.fixed_ips or [])]
        out.counts["router_interfaces"] = len(ports)
    if server:
        servers = [s for s in c.nova.servers.list(search_opts={"all_tenants": 1,
                                                               "name": f"^{n}vm$"})
                   if s.name == f"{n}vm"]
        count("servers", servers, lambda s: TAG in c.nova.servers.tag_list(s.id))
        out.notes += [f"server {s.id} is {s.status}" for s in servers if s.status != "ACTIVE"]
    return out


def _clean(c: Clients, n: str) -> None:
    """Delete everything named with the scenario's prefix (servers first)."""
    servers = [s for s in c.nova.servers.list(search_opts={"all_tenants": 1, "name": f"^{n}"})
               if s.name.startswith(n)]
    for s in servers:
        with contextlib.suppress(Exception):
            c.nova.servers.delete(s.id)
    deadline = time.monotonic() + 120
    while servers and time.monotonic() < deadline:
        live = {s.id for s in c.nova.servers.list(search_opts={"all_tenants": 1})}
        servers = [s for s in servers if s.id in live]
        time.sleep(1)
    for img in c.glance.images.list(filters={"visibility": "all"}):
        if (img.get("name") or "").startswith(n):
            with contextlib.suppress(Exception):
                c.glance.images.delete(img["id"])
    for f in c.nova.flavors.list(is_public=None):
        if f.name.startswith(n):
            with contextlib.suppress(Exception):
                f.delete()
    net = c.net
    for r in net.routers(name=f"{n}rtr"):
        if r.name.startswith(n):
            with contextlib.suppress(Exception):
                for p in net.ports(device_id=r.id):
                    if p.device_owner == "network:router_interface":
                        net.remove_interface_from_router(r, port_id=p.id)
                net.delete_router(r)
    for network in net.networks(name=f"{n}net"):
        if network.name.startswith(n):
            for p in net.ports(network_id=network.id):
                with contextlib.suppress(Exception):
                    net.delete_port(p)
            with contextlib.suppress(Exception):
                net.delete_network(network)
    for sg in net.security_groups(name=f"{n}sg"):
        if sg.name.startswith(n):
            with contextlib.suppress(Exception):
                net.delete_security_group(sg)
    for p in c.keystone.projects.list():
        if p.name.startswith(n):
            with contextlib.suppress(Exception):
                c.keystone.projects.delete(p)
