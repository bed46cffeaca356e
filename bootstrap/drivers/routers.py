"""routers: Neutron routers, their external gateway and their interfaces on subnets.

A router does not list its interfaces: ONE ports list (the router-interface ports of
the whole cloud) is joined in memory by device_id. Adding or removing an interface is an
in-place update of the router.

Static routes (`routes`, destination + nexthop) are a set: added and removed with
Neutron's extra-routes calls (atomic per call, no read-modify-write of the whole list),
after the interfaces they need are there and before those they use are removed.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from typing import TYPE_CHECKING

from bootstrap.drivers._neutron import (
    TAGS,
    NeutronDriver,
    already_done,
    change_tags,
    check_external_network,
    cidr,
    completing,
    drop_none,
    ignore_not_found,
    ip,
    is_managed,
    stack_of,
    text,
)
from bootstrap.plan import Observed, contains_pending

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker

# Port owners of router interfaces (legacy, DVR and HA routers).
INTERFACE_OWNERS = (
    "network:router_interface",
    "network:router_interface_distributed",
    "network:ha_router_replicated_interface",
)
SDK_ATTRS = {"description": "description", "admin_state_up": "is_admin_state_up"}


def routes(value):
    """Static routes are a set: order-free, one spelling per CIDR and address."""
    items = [
        {"destination": cidr(r["destination"]), "nexthop": ip(r["nexthop"])} for r in value or []
    ]
    unique = {(r["destination"], r["nexthop"]): r for r in items}
    return [unique[k] for k in sorted(unique)]


def gateway(info):
    """Neutron's external_gateway_info in the manifest's shape (None: no gateway)."""
    if not info or not info.get("network_id"):
        return None
    return drop_none({"network": info["network_id"], "enable_snat": info.get("enable_snat")})


def gateway_info(desired):
    """The manifest's external_gateway as Neutron's external_gateway_info ({}: none)."""
    if not desired:
        return {}
    info = {"network_id": desired["network"]}
    if "enable_snat" in desired:
        # Only when asked: setting enable_snat is admin-only under the default policy.
        info["enable_snat"] = desired["enable_snat"]
    return info


class RouterDriver(NeutronDriver):
    kind = "routers"
    references = {
        "project": "projects",
        "external_gateway.network": "networks",
        "interfaces[]": "subnets",
    }
    updatable = frozenset(
        {"description", "admin_state_up", "external_gateway", "interfaces", "routes"}
    )
    immutable = frozenset()
    replace_is_destructive = False
    # Interfaces are a set of subnet ids: added and removed one by one, never at create;
    # routes need a nexthop on a connected subnet: after the interfaces.
    set_fields = frozenset({"interfaces", "routes"})
    set_after_create = frozenset({"interfaces", "routes"})
    sdk_attrs = SDK_ATTRS
    noun = "router"
    position = 160
    admin_fields = {"external_gateway.enable_snat": None}
    export_fields = {"description": "", "admin_state_up": True, "interfaces": []}

    def export(self, observed, names):
        # The gateway's network by name; enable_snat is left out (admin-only, and
        # compared only when given).
        spec = super().export(observed, names)
        gw = observed.fields.get("external_gateway")
        if spec is not None and gw:
            network = names.link("networks", gw.get("network"))
            if network is not None:
                spec["external_gateway"] = {"network": network}
        return spec

    @classmethod
    def check(cls, c: Checker) -> None:
        check_external_network(c, ("external_gateway", "network"))
        seen: dict[tuple[str, str], int] = {}
        for i, route in enumerate(c.spec.get("routes") or []):
            p = ("routes", i)
            if not (c.ok(p + ("destination",)) and c.ok(p + ("nexthop",))):
                continue
            dest = ipaddress.ip_network(route["destination"], strict=False)
            hop = ipaddress.ip_address(route["nexthop"])
            if dest.version != hop.version:
                c.error(p, f"route to {dest} has an IPv{hop.version} nexthop")
            key = (str(dest), str(hop))
            if key in seen:
                c.error(p, f"route to {dest} via {hop} is given twice (also item {seen[key] + 1})")
            seen.setdefault(key, i)

    def observe(self, r, ports) -> Observed:
        subnets = {ip["subnet_id"] for p in ports for ip in (p.fixed_ips or [])}
        fields = {
            "name": r.name,
            "project_id": r.project_id,
            "description": text(r.description),
            "admin_state_up": r.is_admin_state_up,
            "external_gateway": gateway(r.external_gateway_info),
            "interfaces": sorted(subnets),
            "routes": routes(r.routes),
        }
        raw = {"router": r, "ports": sorted(p.id for p in ports)}
        return Observed(r.id, fields, raw, is_managed(r), stack_of(r))

    def normalise(self, field_name, value):
        if field_name == "description":
            return text(value)
        if field_name == "interfaces":
            return sorted(set(value or []), key=str)
        if field_name == "routes":
            return routes(value)
        if field_name == "external_gateway" and value is not None:
            return {k: value[k] for k in ("network", "enable_snat") if k in value}
        return value

    def equal(self, field_name, desired, observed):
        if field_name == "external_gateway":
            if contains_pending(desired):
                return False
            if not desired or not observed:
                return not desired and not observed
            # enable_snat only when the manifest gives it (Neutron defaults it to true).
            return all(observed.get(k) == v for k, v in desired.items())
        return super().equal(field_name, desired, observed)

    def create_args(self, resource, desired, resolver):
        args = super().create_args(resource, desired, resolver)
        if "external_gateway" in args:
            gw = args.pop("external_gateway")
            if gw:
                args["external_gateway_info"] = gateway_info(gw)
        return args

    def update_patch(self, resource, observed, desired, fields):
        patch = super().update_patch(resource, observed, desired, fields)
        if "external_gateway" in patch:
            # {} clears the gateway.
            patch["external_gateway_info"] = gateway_info(patch.pop("external_gateway"))
        return patch

    # -- I/O -------------------------------------------------------------------------
    def sdk_class(self):
        from openstack.network.v2.router import Router

        return Router

    def read_all(self, cloud, resources, known=None):
        routers = list(cloud.network.routers())
        ports = defaultdict(list)
        for p in cloud.network.ports(device_owner=list(INTERFACE_OWNERS)):
            ports[p.device_id].append(p)
        return [self.observe(r, ports.get(r.id, [])) for r in routers]

    def create(self, cloud, args, ctx):
        return self.observe(cloud.network.create_router(**args), [])

    def update(self, cloud, observed, patch, ctx):
        """Tags, the one PUT, then: routes removed, interfaces changed, routes added (a
        route needs an interface on its nexthop's subnet; Neutron refuses to remove an
        interface a route still uses)."""
        attrs = {k: v for k, v in patch.items() if k != TAGS and k not in self.set_fields}
        new_routes = patch.get("routes")

        def run() -> None:
            if TAGS in patch:
                change_tags(cloud, self.sdk_class(), observed.id, patch[TAGS])
            if attrs:
                cloud.network.update_router(observed.id, **attrs)
            if new_routes is not None and new_routes.remove:
                cloud.network.remove_extra_routes_from_router(
                    observed.id, {"router": {"routes": list(new_routes.remove)}}
                )
            if "interfaces" in patch:
                self.change_set(cloud, observed, "interfaces", patch["interfaces"])
            if new_routes is not None and new_routes.add:
                cloud.network.add_extra_routes_to_router(
                    observed.id, {"router": {"routes": list(new_routes.add)}}
                )

        completing("router", observed.id, patch, run)

    def change_set(self, cloud, observed, field_name, delta):
        # Removals first: a subnet moved between routers frees its address first.
        for subnet_id in delta.remove:
            ignore_not_found(
                cloud.network.remove_interface_from_router, observed.id, subnet=subnet_id
            )
        for subnet_id in delta.add:
            try:
                cloud.network.add_interface_to_router(observed.id, subnet=subnet_id)
            except Exception as exc:
                # A retry after a lost answer: the interface is there, the goal reached.
                # Neutron says so, or that the subnet overlaps with itself.
                if not (
                    already_done(exc, "already has a port on subnet")
                    or (already_done(exc, "overlaps with cidr") and str(exc).count(subnet_id) > 1)
                ):
                    raise

    def delete(self, cloud, observed, ctx):
        # Neutron refuses to delete a router that still has interfaces: the ports seen
        # by the read that planned this delete go first.
        for port_id in (observed.raw or {}).get("ports", []):
            ignore_not_found(cloud.network.remove_interface_from_router, observed.id, port=port_id)
        cloud.network.delete_router(observed.id, ignore_missing=False)
