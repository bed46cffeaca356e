"""users: Keystone users. Passwords are write-only unless `update_password: always`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bootstrap.drivers._keystone import attr, is_managed, marker, text
from bootstrap.drivers.base import Driver
from bootstrap.model import Address
from bootstrap.plan import Observed

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker

PASSWORD_DIFFERS = "(differs)"


class UserDriver(Driver):
    kind = "users"
    key_fields = ("domain", "name")
    references = {"domain": "domains", "default_project": "projects"}
    updatable = frozenset({"email", "description", "enabled", "default_project", "password"})
    immutable = frozenset()
    secret_fields = frozenset({"password"})
    warn_inline_secret = frozenset({"password"})
    write_only = frozenset({"update_password"})
    ownership = "extra"
    position = 40
    needs_admin = True
    needs_default_domain = True

    @classmethod
    def check(cls, c: Checker) -> None:
        if c.spec.get("update_password") == "always" and not c.written("password"):
            c.warn(("update_password",), "update_password: always without a password has no effect")

    def observe(self, u) -> Observed:
        fields = {
            "name": u.name,
            "domain_id": u.domain_id,
            "email": attr(u, "email", None),
            "description": text(attr(u, "description", None)),
            "enabled": attr(u, "enabled", True),
            "default_project": attr(u, "default_project_id", None),
        }
        return Observed(u.id, fields, u, is_managed(u))

    def is_write_only(self, resource, field_name):
        # Keystone never returns passwords: only a token request can tell drift.
        return field_name == "password" and resource.spec.get("update_password") != "always"

    def normalise(self, field_name, value):
        return text(value) if field_name == "description" else value

    def read_all(self, cloud, resources):
        users = [self.observe(u) for u in cloud.keystone.users.list()]
        checks = [
            r
            for r in resources
            if not r.absent and not self.is_write_only(r, "password") and "password" in r.spec
        ]
        if checks:
            by_name: dict[str, list[Observed]] = {}
            for o in users:
                by_name.setdefault(o.fields["name"], []).append(o)
            for r in checks:
                for o in by_name.get(r.spec["name"], []):
                    secret = r.spec["password"]
                    ok = password_works(cloud, o.id, secret.reveal())
                    o.fields["password"] = secret if ok else PASSWORD_DIFFERS
        return users

    def address_of_observed(self, observed):
        return Address(self.kind, (observed.fields["name"],))

    def _kwargs(self, desired, resource):
        kw = {}
        for f in ("email", "description", "enabled"):
            if f in desired:
                kw[f] = desired[f]
        if "default_project" in desired:
            kw["default_project"] = desired["default_project"]
        return kw

    def create(self, cloud, resource, desired, resolver):
        domain_ref = resource.spec.get("domain")
        domain = resolver.id(domain_ref.address if domain_ref else Address("domains", ("Default",)))
        password = resource.spec.get("password")
        u = cloud.keystone.users.create(
            resource.spec["name"],
            domain=domain,
            password=password.reveal() if password is not None else None,
            **self._kwargs(desired, resource),
            **marker(),
        )
        return self.observe(u)

    def update(self, cloud, resource, observed, changed, resolver):
        kw = self._kwargs(changed, resource)
        if "password" in changed:
            kw["password"] = resource.spec["password"].reveal()
        cloud.keystone.users.update(observed.id, **kw)

    def delete(self, cloud, observed):
        cloud.keystone.users.delete(observed.id)


def password_works(cloud, user_id: str, password: str) -> bool:
    """Ask Keystone for an unscoped token as the user; nothing is stored."""
    from keystoneauth1 import exceptions as ks_exc
    from keystoneauth1.identity import v3

    auth = v3.Password(auth_url=cloud.auth_url, user_id=user_id, password=password)
    try:
        auth.get_auth_ref(cloud.session)
        return True
    except ks_exc.Unauthorized:
        return False
