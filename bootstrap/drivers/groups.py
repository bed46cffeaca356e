"""groups: Keystone groups and their members."""

from __future__ import annotations

from bootstrap.drivers._keystone import (
    KeystoneDriver,
    attr,
    is_managed,
    list_all,
    stack_of,
    text,
    with_marker,
)
from bootstrap.export import stand_in
from bootstrap.plan import Observed


class GroupDriver(KeystoneDriver):
    kind = "groups"
    manager = "groups"
    reads_alone = False  # its read_all looks at the manifest's resources
    key_fields = ("domain", "name")
    references = {"domain": "domains", "members[]": "users"}
    updatable = frozenset({"description", "members"})
    immutable = frozenset()
    set_fields = frozenset({"members"})
    # Keystone adds members one by one, after the group exists.
    set_after_create = frozenset({"members"})
    position = 50
    create_before_destroy_impossible = "Keystone group names are unique in their domain"
    needs_default_domain = True
    export_fields = {"description": "", "members": []}

    def export_reads(self, selected, names):
        # Members are read only for groups named by a manifest: stand-ins that name them.
        return [
            stand_in(self.kind, o.fields["name"], members=[])
            for o in selected.get(self.kind, [])
        ]

    def observe(self, g, members=None) -> Observed:
        fields = {
            "name": g.name,
            "domain_id": g.domain_id,
            "description": text(attr(g, "description", None)),
        }
        if members is not None:
            fields["members"] = sorted(members)
        return Observed(g.id, fields, g, is_managed(g), stack_of(g))

    def normalise(self, field_name, value):
        if field_name == "members":
            return sorted(value or [], key=str)
        return super().normalise(field_name, value)

    def read_all(self, cloud, resources, known=None):
        # Keystone has no list of all memberships: one GET per group whose members
        # the manifest manages.
        wanted = {r.spec["name"] for r in resources if "members" in r.spec}
        out = []
        for g in list_all(cloud, "/groups"):
            members = None
            if g.name in wanted:
                members = [u.id for u in list_all(cloud, f"/groups/{g.id}/users")]
            out.append(self.observe(g, members))
        return out

    def create(self, cloud, args, ctx):
        a = with_marker(args)
        return self.observe(self.api(cloud).create(a.pop("name"), **a), [])

    def update(self, cloud, observed, patch, ctx):
        attrs = {k: v for k, v in patch.items() if k != "members"}
        if attrs:  # the description, the ownership marker
            self.api(cloud).update(observed.id, **attrs)
        if "members" in patch:
            users = cloud.keystone.users
            for user_id in patch["members"].add:
                users.add_to_group(user_id, observed.id)
            for user_id in patch["members"].remove:
                users.remove_from_group(user_id, observed.id)
