"""routers: Neutron routers, their external gateway and their interfaces on subnets.

A router does not list its interfaces: ONE ports list (the router-interface ports of
the whole cloud) is joined in memory by device_id. Adding or removing an interface is an
in-place update of the router.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from bootstrap.drivers._neutron import (
    NeutronDriver,
    already_done,
    check_external_network,
    drop_none,
    ignore_not_found,
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
    updatable = frozenset({"description", "admin_state_up", "external_gateway", "interfaces"})
    immutable = frozenset()
    replace_is_destructive = False
    # Interfaces are a set of subnet ids: added and removed one by one, never at create.
    set_fields = frozenset({"interfaces"})
    set_after_create = frozenset({"interfaces"})
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

    def observe(self, r, ports) -> Observed:
        subnets = {ip["subnet_id"] for p in ports for ip in (p.fixed_ips or [])}
        fields = {
            "name": r.name,
            "project_id": r.project_id,
            "description": text(r.description),
            "admin_state_up": r.is_admin_state_up,
            "external_gateway": gateway(r.external_gateway_info),
            "interfaces": sorted(subnets),
        }
        raw = {"router": r, "ports": sorted(p.id for p in ports)}
        return Observed(r.id, fields, raw, is_managed(r), stack_of(r))

    def normalise(self, field_name, value):
        if field_name == "description":
            return text(value)
        if field_name == "interfaces":
            return sorted(set(value or []), key=str)
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

    def read_all(self, cloud, resources):
        routers = list(cloud.network.routers())
        ports = defaultdict(list)
        for p in cloud.network.ports(device_owner=list(INTERFACE_OWNERS)):
            ports[p.device_id].append(p)
        return [self.observe(r, ports.get(r.id, [])) for r in routers]

    def create(self, cloud, args, ctx):
        return self.observe(cloud.network.create_router(**args), [])

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
