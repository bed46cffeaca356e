"""endpoints: catalog endpoints, keyed by (service, interface, region)."""

from __future__ import annotations

from bootstrap.drivers._keystone import KeystoneDriver, attr, is_managed, stack_of, with_marker
from bootstrap.model import Address
from bootstrap.plan import Observed


class EndpointDriver(KeystoneDriver):
    kind = "endpoints"
    manager = "endpoints"
    key_fields = ("service", "interface", "region")
    references = {"service": "services", "region": "regions"}
    updatable = frozenset({"url", "enabled"})
    immutable = frozenset()
    replace_is_destructive = False
    position = 90
    required_for_create = frozenset({"url"})

    def observe(self, e) -> Observed:
        fields = {
            "service_id": e.service_id,
            "interface": e.interface,
            "region_id": attr(e, "region_id", None),
            "url": e.url,
            "enabled": attr(e, "enabled", True),
        }
        return Observed(e.id, fields, e, is_managed(e), stack_of(e))

    def identity(self, resource, resolver):
        spec = resource.spec
        ident = {
            "service_id": resolver.live(spec["service"].address),
            "interface": spec["interface"],
            "region_id": resolver.live(spec["region"].address) if spec.get("region") else None,
        }
        if ident["service_id"] is None or (spec.get("region") and ident["region_id"] is None):
            return None
        return ident

    def address_of_observed(self, observed):
        f = observed.fields
        return Address(self.kind, (f["service_id"], f["interface"], str(f["region_id"])))

    def create_args(self, resource, desired, resolver):
        spec = resource.spec
        return {
            "service": resolver.id(spec["service"].address),
            "url": spec["url"],
            "interface": spec["interface"],
            "region": resolver.id(spec["region"].address) if spec.get("region") else None,
            "enabled": desired.get("enabled", True),
        }

    def create(self, cloud, args, ctx):
        a = with_marker(args)
        return self.observe(self.api(cloud).create(a.pop("service"), a.pop("url"), **a))
