"""application_credentials: Keystone application credentials, with their secret in a file.

Keystone shows the secret ONCE, in the create answer: it is written to `secret_file`
(mode 0600, through a temporary file renamed over it, so a reader never sees half a
secret) and never printed, logged or put in a plan. A credential that exists while its
file does not is a plan error: the secret cannot be fetched again, and re-creating it
silently would break whoever holds the old one — delete it (`state: absent`) or restore
the file. Credentials are immutable: any change is a destructive replace (the old secret
stops working), and the new secret is written to the file.

Keystone's default policy lets only the user create their own credentials (an admin gets
403 for another user). So a credential of the tool's own user (no `user`) is made with
the tool's credentials scoped to `project`; one of another user is made by logging in as
that user, with the password the manifest gives that user (`users[].password`). Reading
lists the own user's credentials plus one list per other user named (admins may list
another user's). Roles compare by inclusion: Keystone adds the roles the listed ones
imply (member brings reader). They have no place for an ownership marker: --prune never
deletes them.
"""

from __future__ import annotations

import datetime
import os
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bootstrap.drivers._keystone import list_all
from bootstrap.drivers.base import Driver
from bootstrap.drivers.keypairs import KeypairDriver
from bootstrap.errors import PlanError
from bootstrap.model import Address, Ref, Secret
from bootstrap.plan import Action, Observed
from bootstrap.probes import Probe

if TYPE_CHECKING:
    from bootstrap.cloud import Cloud
    from bootstrap.manifest.checks import Checker


@dataclass(frozen=True)
class FileExists(Probe):
    """Whether a local file exists (its content is never read: it holds a secret)."""

    path: str

    def run(self, cloud: Cloud) -> bool:
        return os.path.isfile(self.path)


def timestamp(value: Any) -> str | None:
    """A UTC timestamp to the second, as the manifest writes it (no zone, no fraction)."""
    if not value:
        return None
    when = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if when.tzinfo is not None:
        when = when.astimezone(datetime.UTC).replace(tzinfo=None)
    return when.replace(microsecond=0).isoformat()


def rules(value: Any) -> list[dict[str, str]]:
    keep = ("service", "method", "path")
    items = [{k: str(r[k]) for k in keep if r.get(k) is not None} for r in value or []]
    return sorted(items, key=lambda r: tuple(r.get(k, "") for k in keep))


def write_secret(path: str, secret: str) -> None:
    """Write the secret atomically, readable by the owner only."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".secret-", dir=folder)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secret + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ApplicationCredentialDriver(Driver):
    clients = ("identity",)  # reads: JSON on the session
    write_clients = ("keystone",)
    made_in_token_project = True
    kind = "application_credentials"
    key_fields = ("user", "name")
    references = {"user": "users", "project": "projects"}
    path_fields = {"secret_file": "write"}
    immutable = frozenset(
        {"project", "description", "roles", "expires_at", "unrestricted", "access_rules"}
    )
    write_only = frozenset({"secret_file"})
    ownership = None
    position = 45
    create_before_destroy_impossible = "application credential names are unique per user"
    required_for_create = frozenset({"project", "secret_file"})

    @classmethod
    def check(cls, c: Checker) -> None:
        if c.state == "present" and not c.written("secret_file"):
            c.error((), "needs secret_file: Keystone shows the secret once, at creation")
        user = c.target(c.spec.get("user"))
        if c.state == "present" and user is not None and "password" not in user.spec:
            c.error(
                ("user",),
                f"Keystone lets only the user create their own application credentials: "
                f"give {user.address} a password in the manifest, so the tool can log in "
                "as that user (or leave `user` out for the tool's own user)",
            )

    @classmethod
    def natural_key(cls, spec: dict[str, Any]) -> tuple[str, ...]:
        user = spec.get("user")
        if isinstance(user, Ref):
            return (*user.address.key, str(spec.get("name")))
        return (str(spec.get("name")),)

    def identity(self, resource, resolver):
        user = resource.spec.get("user")
        if isinstance(user, Ref):
            user_id = resolver.live(user.address)
            if user_id is None:
                return None
            return {"name": resource.spec["name"], "user_id": user_id}
        return {"name": resource.spec["name"], "own": True}

    def adoptable(self, observed: Observed) -> bool:
        return False  # a credential whose create answer was lost has a secret nobody saw

    def observe(self, a: Any, own: bool) -> Observed:
        info = a.to_dict() if hasattr(a, "to_dict") else dict(a)
        fields = {
            "name": info["name"],
            "user_id": info.get("user_id"),
            "own": own,
            "project": info.get("project_id"),
            "description": info.get("description") or "",
            "roles": sorted(r["name"] for r in info.get("roles") or []),
            "expires_at": timestamp(info.get("expires_at")),
            "unrestricted": bool(info.get("unrestricted")),
            "access_rules": rules(info.get("access_rules")),
        }
        return Observed(info["id"], fields, None)

    def normalise(self, field_name, value):
        if field_name == "description":
            return value or ""
        if field_name == "roles":
            return sorted(value or [])
        if field_name == "expires_at":
            return timestamp(value)
        if field_name == "access_rules":
            return rules(value)
        return value

    def equal(self, field_name, desired, observed):
        if field_name == "roles" and isinstance(observed, list):
            return set(desired) <= set(observed)
        return super().equal(field_name, desired, observed)

    def replace_reason(self, fields):
        return (
            f"Keystone cannot change an application credential's {', '.join(fields)}: it is "
            "deleted and created again, the old secret stops working and the new one is "
            "written to the secret file"
        )

    def address_of_observed(self, observed: Observed) -> Address:
        return Address(self.kind, (observed.fields["name"],))

    # --- the secret file: it must exist when the credential does ----------------------
    def probes(self, resource, candidates):
        path = resource.spec.get("secret_file")
        return [FileExists(path)] if path else []

    def diff(self, resource, observed, resolver, facts=None):
        change = super().diff(resource, observed, resolver, facts)
        path = resource.spec.get("secret_file")
        if (
            not resource.absent
            and observed is not None
            and change.action is not Action.REPLACE
            and path
            and not (facts or {}).get(FileExists(path), False)
        ):
            raise PlanError(
                f"{resource.address}: the credential exists but its secret file {path} does "
                "not; Keystone shows a secret only once, so the tool cannot write it again. "
                "Restore the file, or delete the credential (state: absent) and apply "
                "again to make a new one"
            )
        return change

    def create_args(self, resource, desired, resolver):
        spec = resource.spec
        args: dict[str, Any] = {
            "name": spec["name"],
            "project_id": resolver.id(spec["project"].address),
            "secret_file": spec.get("secret_file"),
        }
        for f in ("description", "expires_at", "unrestricted", "access_rules"):
            if f in desired:
                args[f] = desired[f]
        if "roles" in spec:
            args["roles"] = list(spec["roles"])
        user = spec.get("user")
        if isinstance(user, Ref):
            args["user_id"] = resolver.id(user.address)
            owner = resolver.resource(user.address)
            password = owner.spec.get("password") if owner is not None else None
            args["password"] = (
                password if isinstance(password, Secret) else Secret(str(password), "inline")
            )
        return args

    # --- I/O ----------------------------------------------------------------------------
    def read_all(self, cloud, resources, known=None):
        me = cloud.user_id
        path = "/users/{}/application_credentials"
        out = [self.observe(a, True) for a in list_all(cloud, path.format(me))]
        others = {r.spec["user"].address for r in resources if isinstance(r.spec.get("user"), Ref)}
        user_ids = KeypairDriver._user_ids(cloud, others) if others else {}
        for user_id in sorted(set(user_ids.values()) - {me}):
            listed = list_all(cloud, path.format(user_id))
            out.extend(self.observe(a, False) for a in listed)
        return out

    def create(self, cloud, args, ctx):
        as_user = self._as_user(cloud, args)
        user_id = args.get("user_id") or cloud.user_id
        kwargs: dict[str, Any] = {"user": user_id}
        for f in ("description", "expires_at", "unrestricted", "access_rules"):
            if args.get(f) is not None:
                kwargs[f] = args[f]
        if args.get("expires_at"):
            kwargs["expires_at"] = datetime.datetime.fromisoformat(args["expires_at"])
        if args.get("roles"):
            kwargs["roles"] = [{"name": r} for r in args["roles"]]
        made = as_user.keystone.application_credentials.create(args["name"], **kwargs)
        secret = made.secret
        try:
            write_secret(args["secret_file"], secret)
        except OSError:
            # Nobody can ever read this secret again: the credential goes with it.
            as_user.keystone.application_credentials.delete(made.id, user=user_id)
            raise
        finally:
            del secret
            made._info.pop("secret", None)
            made.__dict__.pop("secret", None)
        return self.observe(made, user_id == cloud.user_id)

    @staticmethod
    def _as_user(cloud, args) -> Any:
        """The credential's user with a token scoped to its project (Keystone's policy)."""
        if not args.get("user_id"):
            from bootstrap.drivers._nova import project_cloud

            return project_cloud(cloud, args["project_id"], args["name"])
        from keystoneauth1 import session as ks_session
        from keystoneauth1.identity import v3

        from bootstrap.cloud import Cloud as CloudType

        password = args["password"]
        auth = v3.Password(
            auth_url=cloud.auth_url,
            user_id=args["user_id"],
            password=password.reveal() if isinstance(password, Secret) else str(password),
            project_id=args["project_id"],
        )
        session = ks_session.Session(
            auth=auth, verify=cloud.session.verify, cert=cloud.session.cert
        )
        return CloudType(cloud.region, session=session, counter=cloud.counter, retry=cloud.retry)

    def delete(self, cloud, observed, ctx):
        cloud.keystone.application_credentials.delete(
            observed.id, user=observed.fields.get("user_id")
        )
