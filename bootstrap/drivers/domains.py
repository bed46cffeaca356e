"""domains: Keystone domains (identity v3)."""

from __future__ import annotations

from bootstrap.cloud import classify
from bootstrap.drivers._keystone import KeystoneDriver, is_managed, stack_of, text, with_marker
from bootstrap.errors import Forbidden
from bootstrap.plan import Observed


class DomainDriver(KeystoneDriver):
    kind = "domains"
    manager = "domains"
    reads_alone = False  # its read_all looks at the manifest's resources
    key_fields = ("name",)
    references = {}
    export_fields = {"description": "", "enabled": True}
    updatable = frozenset({"description", "enabled"})
    immutable = frozenset()
    position = 10
    create_before_destroy_impossible = "Keystone domain names are unique"
    needs_default_domain = True

    def observe(self, d) -> Observed:
        fields = {"name": d.name, "description": text(d.description), "enabled": d.enabled}
        return Observed(d.id, fields, d, is_managed(d), stack_of(d))

    def read_all(self, cloud, resources, known=None):
        try:
            return super().read_all(cloud, resources)
        except Exception as exc:
            # A non-admin may not list domains; it needs them only to know the Default
            # domain's id, which the engine then assumes is "default".
            if resources or not isinstance(classify(exc), Forbidden):
                raise
            return []

    def create(self, cloud, args, ctx):
        a = with_marker(args)
        return self.observe(self.api(cloud).create(a.pop("name"), **a))

    def delete(self, cloud, observed, ctx):
        # Keystone deletes only disabled domains.
        if observed.fields.get("enabled", True):
            self.api(cloud).update(observed.id, enabled=False)
        self.api(cloud).delete(observed.id)
