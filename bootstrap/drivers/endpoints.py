"""endpoints: catalog endpoints, keyed by (service, interface, region)."""

from __future__ import annotations

from bootstrap.drivers._keystone import attr, is_managed, marker
from bootstrap.drivers.base import Driver
from bootstrap.model import Address
from bootstrap.plan import UNKNOWN, Observed


class EndpointDriver(Driver):
    kind = "endpoints"
    key_fields = ("service", "interface", "region")
    references = {"service": "services", "region": "regions"}
    updatable = frozenset({"url", "enabled"})
    immutable = frozenset()
    ownership = "extra"
    replace_is_destructive = False
    position = 90
    needs_admin = True
    required_for_create = frozenset({"url"})

    def observe(self, e) -> Observed:
        fields = {
            "service_id": e.service_id,
            "interface": e.interface,
            "region_id": attr(e, "region_id", None),
            "url": e.url,
            "enabled": attr(e, "enabled", True),
        }
        return Observed(e.id, fields, e, is_managed(e))

    def identity(self, resource, resolver):
        spec = resource.spec
        ident = {
            "service_id": resolver.id(spec["service"].address),
            "interface": spec["interface"],
            "region_id": resolver.id(spec["region"].address) if spec.get("region") else None,
        }
        if UNKNOWN in ident.values():
            return None
        return ident

    def read_all(self, cloud, resources):
        return [self.observe(e) for e in cloud.keystone.endpoints.list()]

    def address_of_observed(self, observed):
        f = observed.fields
        return Address(self.kind, (f["service_id"], f["interface"], str(f["region_id"])))

    def create(self, cloud, resource, desired, resolver):
        ident = self.identity(resource, resolver)
        assert ident is not None
        e = cloud.keystone.endpoints.create(
            ident["service_id"],
            resource.spec["url"],
            interface=ident["interface"],
            region=ident["region_id"],
            enabled=desired.get("enabled", True),
            **marker(),
        )
        return self.observe(e)

    def update(self, cloud, resource, observed, changed, resolver):
        cloud.keystone.endpoints.update(observed.id, **changed)

    def delete(self, cloud, observed):
        cloud.keystone.endpoints.delete(observed.id)
