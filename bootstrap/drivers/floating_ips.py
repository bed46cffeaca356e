"""floating_ips: a floating IP from an external network, attached to a server.

Keyed by (project, server): a floating IP is the one whose port belongs to the server
(Neutron's port_details give the port's device_id, so ONE list call reads them all).
A floating IP with the manifest's `address` is adopted even when it hangs loose or sits
on another server: it is then (re)attached, in place.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from bootstrap import known_hosts
from bootstrap.cloud import classify
from bootstrap.drivers._neutron import (
    check_external_network,
    ip,
    is_managed,
    mark,
    subnets_by_network,
    text,
)
from bootstrap.drivers.base import Driver
from bootstrap.errors import CloudError, NotFound
from bootstrap.model import Address, Manifest, Ref, Resource
from bootstrap.plan import UNKNOWN, Observed

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker


class FloatingIPDriver(Driver):
    kind = "floating_ips"
    # The server's own key already holds its project: floating_ips.acme/web-1.
    key_fields = ("server",)
    references = {"project": "projects", "server": "servers", "network": "networks"}
    # `server` is part of the key, but an adopted address may need (re)attaching.
    updatable = frozenset({"description", "server"})
    immutable = frozenset({"network", "address"})
    ownership = "tags"
    position = 170
    required_for_create = frozenset({"network"})

    @classmethod
    def implicit_dependencies(cls, manifest: Manifest) -> Iterator[tuple[Address, Address, str]]:
        # A floating IP can only be associated once a router joins the server's subnet to
        # the external network: it waits for routers with an interface on those subnets.
        subnets_of = subnets_by_network(manifest)
        routers_on: dict[Address, list[Resource]] = {}
        for router in manifest.of_kind("routers"):
            for iface in router.spec.get("interfaces") or []:
                if isinstance(iface, Ref):
                    routers_on.setdefault(iface.address, []).append(router)
        for fip in manifest.of_kind(cls.kind):
            server_ref = fip.spec.get("server")
            server = manifest.get(server_ref.address) if isinstance(server_ref, Ref) else None
            if server is None:
                continue
            for item in server.spec.get("networks") or []:
                net = item.get("network") if isinstance(item, dict) else None
                if not isinstance(net, Ref):
                    continue
                for s in subnets_of.get(net.address, []):
                    for router in routers_on.get(s.address, []):
                        if fip.absent or not router.absent:
                            why = f"server (routed by {router.address})"
                            yield router.address, fip.address, why

    @classmethod
    def check(cls, c: Checker) -> None:
        check_external_network(c, ("network",))

    def observe(self, f, server=None) -> Observed:
        details = f.port_details or {}
        fields = {
            "project_id": f.project_id,
            "server": details.get("device_id") or server,
            "port": f.port_id,
            "network": f.floating_network_id,
            "address": ip(f.floating_ip_address),
            "description": text(f.description),
        }
        return Observed(f.id, fields, f, is_managed(f))

    def normalise(self, field_name, value):
        if field_name == "description":
            return text(value)
        if field_name == "address":
            return ip(value)
        return value

    def identity(self, resource, resolver):
        ident = {
            "project_id": resolver.id(resource.spec["project"].address),
            "server": resolver.id(resource.spec["server"].address),
        }
        # The server may not exist yet: the address is then created after it.
        if UNKNOWN in ident.values():
            return None
        return ident

    def match(self, resource, observed, resolver):
        found = super().match(resource, observed, resolver)
        address = resource.spec.get("address")
        if found is not None or not address:
            return found
        project = resolver.id(resource.spec["project"].address)
        if project is UNKNOWN:
            return None
        same = [
            o
            for o in observed
            if o.fields.get("project_id") == project and o.fields.get("address") == ip(address)
        ]
        return same[0] if same else None

    def address_of_observed(self, observed):
        f = observed.fields
        return Address(self.kind, (str(f.get("project_id")), str(f.get("address") or observed.id)))

    def read_all(self, cloud, resources):
        fips = list(cloud.network.ips())
        servers = {}
        if any(f.port_id and not f.port_details for f in fips):
            # Without the fip-port-details extension: one ports list for the device ids.
            servers = {p.id: p.device_id for p in cloud.network.ports()}
        return [self.observe(f, servers.get(f.port_id)) for f in fips]

    def _server_ports(self, cloud, server_id):
        """The server's ports, those with an IPv4 address first (a floating IP is IPv4)."""
        ports = list(cloud.network.ports(device_id=server_id))
        if not ports:
            raise NotFound(f"server {server_id} has no network port to attach a floating IP to")

        def v4_first(p):
            has_v4 = any(":" not in (x.get("ip_address") or ":") for x in p.fixed_ips or [])
            return (not has_v4, p.created_at or "", p.id)

        return sorted(ports, key=v4_first)

    def _on_some_port(self, cloud, server_id, call):
        """Try the server's ports in turn: only a routed one can take a floating IP."""
        last: BaseException | None = None
        for port in self._server_ports(cloud, server_id):
            try:
                return call(port.id)
            except Exception as exc:  # noqa: BLE001 - "not reachable" tries the next port
                err = classify(exc)
                if err.status not in (400, 404) or err.retryable:
                    raise
                last = exc
        assert last is not None
        raise last

    def create(self, cloud, resource, desired, resolver):
        server_id = resolver.id(resource.spec["server"].address)
        if server_id is UNKNOWN or desired.get("network") in (None, UNKNOWN):
            raise CloudError("a floating IP needs its server and its external network to exist")
        attrs = {
            "project_id": resolver.id(resource.spec["project"].address),
            "floating_network_id": desired["network"],
        }
        if desired.get("address"):
            attrs["floating_ip_address"] = desired["address"]
        if "description" in desired:
            attrs["description"] = desired["description"]
        f = self._on_some_port(
            cloud, server_id, lambda port_id: cloud.network.create_ip(port_id=port_id, **attrs)
        )
        mark(cloud, f)
        # A server with `known_hosts` gets its new public address written there too.
        known_hosts.add_addresses(
            cloud, resource.spec["server"].address, server_id, [f.floating_ip_address]
        )
        return self.observe(f, server_id)

    def update(self, cloud, resource, observed, changed, resolver):
        if "description" in changed:
            cloud.network.update_ip(observed.id, description=changed["description"])
        if "server" in changed:
            self._on_some_port(
                cloud,
                changed["server"],
                lambda port_id: cloud.network.update_ip(observed.id, port_id=port_id),
            )
            address = observed.raw.floating_ip_address if observed.raw is not None else None
            if address:
                known_hosts.add_addresses(
                    cloud, resource.spec["server"].address, changed["server"], [address]
                )

    def delete(self, cloud, observed):
        cloud.network.delete_ip(observed.id, ignore_missing=False)
