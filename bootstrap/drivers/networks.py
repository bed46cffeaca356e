"""networks: Neutron networks. Provider attributes are fixed at creation (a replace)."""

from __future__ import annotations

from bootstrap.drivers._neutron import NeutronDriver, is_managed, stack_of, text
from bootstrap.plan import Observed, contains_pending

PROVIDER_FIELDS = ("network_type", "physical_network", "segmentation_id")
# Manifest field -> openstacksdk attribute.
SDK_ATTRS = {
    "description": "description",
    "admin_state_up": "is_admin_state_up",
    "shared": "is_shared",
    "external": "is_router_external",
    "mtu": "mtu",
    "port_security_enabled": "is_port_security_enabled",
}


class NetworkDriver(NeutronDriver):
    kind = "networks"
    references = {"project": "projects"}
    updatable = frozenset(
        {"description", "admin_state_up", "shared", "external", "mtu", "port_security_enabled"}
    )
    immutable = frozenset({"provider"})
    # The MTU and the provider attributes are Neutron's choice unless asked for: left out.
    export_fields = {
        "description": "",
        "admin_state_up": True,
        "shared": False,
        "external": False,
        "port_security_enabled": True,
    }
    sdk_attrs = SDK_ATTRS
    noun = "network"
    position = 140
    admin_fields = {"provider": None, "external": (True,), "shared": (True,)}

    def observe(self, n) -> Observed:
        fields = {
            "name": n.name,
            "project_id": n.project_id,
            "description": text(n.description),
            "admin_state_up": n.is_admin_state_up,
            "shared": n.is_shared,
            "external": bool(n.is_router_external),
            "mtu": n.mtu,
            "port_security_enabled": n.is_port_security_enabled,
            # A non-admin sees no provider attributes: all None.
            "provider": {
                "network_type": n.provider_network_type,
                "physical_network": n.provider_physical_network,
                "segmentation_id": n.provider_segmentation_id,
            },
        }
        return Observed(n.id, fields, n, is_managed(n), stack_of(n))

    # -- pure ------------------------------------------------------------------------
    def normalise(self, field_name, value):
        if field_name == "description":
            return text(value)
        if field_name == "provider" and isinstance(value, dict):
            return {k: value[k] for k in PROVIDER_FIELDS if k in value}
        return value

    def equal(self, field_name, desired, observed):
        if field_name == "provider":
            # Only the attributes the manifest gives: Neutron picks a VLAN id or a
            # tunnel id itself when none is asked for.
            if contains_pending(desired):
                return False
            have = observed or {}
            return all(have.get(k) == v for k, v in (desired or {}).items())
        return super().equal(field_name, desired, observed)

    def create_args(self, resource, desired, resolver):
        args = super().create_args(resource, desired, resolver)
        for k, v in (args.pop("provider", None) or {}).items():
            args[f"provider_{k}"] = v
        return args

    # -- I/O -------------------------------------------------------------------------
    def sdk_class(self):
        from openstack.network.v2.network import Network

        return Network

