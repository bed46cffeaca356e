"""users: Keystone users. Passwords are write-only unless `update_password: always`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bootstrap.drivers._keystone import (
    KeystoneDriver,
    attr,
    is_managed,
    stack_of,
    text,
    with_marker,
)
from bootstrap.model import Secret
from bootstrap.plan import Observed
from bootstrap.probes import Probe

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker

PASSWORD_DIFFERS = "(differs)"


@dataclass(frozen=True)
class PasswordWorks(Probe):
    """Does Keystone give this user a token for this password? Nothing is stored."""

    user_id: str
    password: Secret

    def run(self, cloud) -> bool:
        from keystoneauth1 import exceptions as ks_exc
        from keystoneauth1.identity import v3

        from bootstrap.cloud import with_retries

        auth = v3.Password(
            auth_url=cloud.auth_url, user_id=self.user_id, password=self.password.reveal()
        )

        def ask() -> bool:
            try:
                auth.get_auth_ref(cloud.session)
                return True
            except ks_exc.Unauthorized:
                return False

        return with_retries(
            ask, address=f"users {self.user_id}: password check", policy=cloud.retry
        )


class UserDriver(KeystoneDriver):
    kind = "users"
    manager = "users"
    key_fields = ("domain", "name")
    references = {"domain": "domains", "default_project": "projects"}
    updatable = frozenset({"email", "description", "enabled", "default_project", "password"})
    immutable = frozenset()
    secret_fields = frozenset({"password"})
    warn_inline_secret = frozenset({"password"})
    write_only = frozenset({"update_password"})
    position = 40
    create_before_destroy_impossible = "Keystone user names are unique in their domain"
    needs_default_domain = True
    export_fields = {"email": None, "description": "", "enabled": True, "default_project": None}
    export_scope = {"domain_id": "domains", "default_project": "projects"}

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
        return Observed(u.id, fields, u, is_managed(u), stack_of(u))

    def export(self, observed, names):
        # Keystone never returns a password: a placeholder set only on create, so that
        # planning the export changes nothing.
        spec = super().export(observed, names)
        if spec is not None:
            domain = names.get("domains", observed.fields.get("domain_id"))
            scope = ""
            if domain is not None and domain.id != names.default_domain_id:
                scope = f"{domain.fields['name']}_"
            spec["password"] = names.secret(
                f"PASSWORD_{scope}{observed.fields['name']}", f"users.{spec['name']} password"
            )
            spec["update_password"] = "on_create"
        return spec

    def is_write_only(self, resource, field_name):
        # Keystone never returns passwords: only a token request can tell drift.
        return field_name == "password" and resource.spec.get("update_password") != "always"

    def probes(self, resource, candidates):
        if self.is_write_only(resource, "password") or "password" not in resource.spec:
            return []
        name = resource.spec["name"]
        return [
            PasswordWorks(o.id, resource.spec["password"])
            for o in candidates
            if o.fields["name"] == name
        ]

    def comparable(self, resource, observed, desired, facts):
        if "password" not in desired:
            return observed
        works = facts.get(PasswordWorks(observed.id, resource.spec["password"]))
        password = resource.spec["password"] if works else PASSWORD_DIFFERS
        return dataclasses.replace(observed, fields={**observed.fields, "password": password})

    def create_args(self, resource, desired, resolver):
        args = super().create_args(resource, desired, resolver)
        if "password" in resource.spec:
            args["password"] = resource.spec["password"]  # compared or not, set on create
        return args

    def create(self, cloud, args, ctx):
        a = with_marker(_revealed(args))
        return self.observe(self.api(cloud).create(a.pop("name"), **a))

    def update(self, cloud, observed, patch, ctx):
        self.api(cloud).update(observed.id, **_revealed(patch))


def _revealed(args: dict) -> dict:
    """The password as Keystone wants it; only here, at the call."""
    password = args.get("password")
    if isinstance(password, Secret):
        return {**args, "password": password.reveal()}
    return args
