"""groups: Keystone groups and their members."""

from __future__ import annotations

from bootstrap.drivers._keystone import attr, is_managed, marker, text
from bootstrap.drivers.base import Driver
from bootstrap.model import Address
from bootstrap.plan import Observed


class GroupDriver(Driver):
    kind = "groups"
    key_fields = ("domain", "name")
    references = {"domain": "domains", "members[]": "users"}
    updatable = frozenset({"description", "members"})
    immutable = frozenset()
    ownership = "extra"
    position = 50
    needs_admin = True
    needs_default_domain = True

    def observe(self, g, members=None) -> Observed:
        fields = {
            "name": g.name,
            "domain_id": g.domain_id,
            "description": text(attr(g, "description", None)),
        }
        if members is not None:
            fields["members"] = sorted(members)
        return Observed(g.id, fields, g, is_managed(g))

    def normalise(self, field_name, value):
        if field_name == "members":
            return sorted(value or [], key=str)
        return text(value) if field_name == "description" else value

    def read_all(self, cloud, resources):
        # Keystone has no list of all memberships: one GET per group whose members
        # the manifest manages.
        wanted = {r.spec["name"] for r in resources if "members" in r.spec}
        out = []
        for g in cloud.keystone.groups.list():
            members = None
            if g.name in wanted:
                members = [u.id for u in cloud.keystone.users.list(group=g.id)]
            out.append(self.observe(g, members))
        return out

    def address_of_observed(self, observed):
        return Address(self.kind, (observed.fields["name"],))

    def create(self, cloud, resource, desired, resolver):
        domain_ref = resource.spec.get("domain")
        domain = resolver.id(domain_ref.address if domain_ref else Address("domains", ("Default",)))
        g = cloud.keystone.groups.create(
            resource.spec["name"],
            domain=domain,
            description=desired.get("description"),
            **marker(),
        )
        for user_id in desired.get("members", []):
            cloud.keystone.users.add_to_group(user_id, g.id)
        return self.observe(g, desired.get("members"))

    def update(self, cloud, resource, observed, changed, resolver):
        if "description" in changed:
            cloud.keystone.groups.update(observed.id, description=changed["description"])
        if "members" in changed:
            have = set(observed.fields.get("members") or [])
            want = set(changed["members"])
            for user_id in sorted(want - have):
                cloud.keystone.users.add_to_group(user_id, observed.id)
            for user_id in sorted(have - want):
                cloud.keystone.users.remove_from_group(user_id, observed.id)

    def delete(self, cloud, observed):
        cloud.keystone.groups.delete(observed.id)
