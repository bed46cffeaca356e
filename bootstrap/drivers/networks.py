"""networks: Neutron networks. Provider attributes are fixed at creation (a replace)."""

from __future__ import annotations

from bootstrap.drivers._neutron import create_attrs, is_managed, mark, text
from bootstrap.drivers._neutron import project_scoped_address as _scoped_address
from bootstrap.drivers.base import Driver, contains_unknown
from bootstrap.plan import Observed

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


class NetworkDriver(Driver):
    kind = "networks"
    key_fields = ("project", "name")
    references = {"project": "projects"}
    updatable = frozenset(
        {"description", "admin_state_up", "shared", "external", "mtu", "port_security_enabled"}
    )
    immutable = frozenset({"provider"})
    ownership = "tags"
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
        return Observed(n.id, fields, n, is_managed(n))

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
            if contains_unknown(desired):
                return False
            have = observed or {}
            return all(have.get(k) == v for k, v in (desired or {}).items())
        return super().equal(field_name, desired, observed)

    def address_of_observed(self, observed):
        return _scoped_address(self.kind, observed)

    def read_all(self, cloud, resources):
        return [self.observe(n) for n in cloud.network.networks()]

    def create(self, cloud, resource, desired, resolver):
        attrs = create_attrs(resource, desired, resolver, SDK_ATTRS)
        for k, v in (desired.get("provider") or {}).items():
            attrs[f"provider_{k}"] = v
        n = cloud.network.create_network(**attrs)
        mark(cloud, n)
        return self.observe(n)

    def update(self, cloud, resource, observed, changed, resolver):
        attrs = {SDK_ATTRS[f]: v for f, v in changed.items() if f in SDK_ATTRS}
        if attrs:
            cloud.network.update_network(observed.id, **attrs)

    def delete(self, cloud, observed):
        cloud.network.delete_network(observed.id, ignore_missing=False)
