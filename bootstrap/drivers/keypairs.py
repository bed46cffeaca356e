"""keypairs: Nova keypairs (public halves), owned by a user.

Nova keys keypairs by (user, name). Without `user` the keypair belongs to the tool's own
user; with `user` (admin only) to that user. Keys compare by type and base64 blob (the
comment is ignored); a different key under the same name is a replace. Reads: the own
user's list, plus one list per other user named in the manifest. A `public_key_file` is
read by a `FileText` probe and compared with the live key in `comparable`; a create's
key text comes from that same probe, so apply reads no file. Keypairs have no place for
an ownership marker: --prune never deletes keypairs.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from bootstrap.drivers._keystone import list_all
from bootstrap.drivers.base import Driver
from bootstrap.errors import PlanError
from bootstrap.export import ALWAYS, stand_in
from bootstrap.model import Address, Ref
from bootstrap.plan import Observed
from bootstrap.probes import FileText

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker


def key_text(text: str, key_type: str | None = "ssh") -> str:
    """A comparable form: "type base64" for SSH keys, the stripped PEM for x509."""
    text = text.strip()
    if key_type == "x509" or text.startswith("-----BEGIN"):
        return "\n".join(line.strip() for line in text.splitlines() if line.strip())
    parts = text.split()
    return " ".join(parts[:2]) if len(parts) >= 2 else text


def short_key(text: str) -> str:
    kind, _, blob = text.partition(" ")
    return f"{kind} {blob[:12]}...{blob[-8:]}" if len(blob) > 24 else text


SSH_KEY = re.compile(
    r"^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|"
    r"sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}( .*)?$"
)


class KeypairDriver(Driver):
    kind = "keypairs"
    clients = ("nova", "identity")
    key_fields = ("user", "name")
    references = {"user": "users"}
    path_fields = {"public_key_file": "read"}
    updatable = frozenset()
    immutable = frozenset({"public_key", "public_key_file", "type"})
    # Servers keep the key they were booted with; only future boots get the new one.
    replace_is_destructive = False
    ownership = None
    position = 120
    create_before_destroy_impossible = "keypair names are unique per user"
    export_fields = {"public_key": ALWAYS, "type": "ssh"}
    export_scope = {"user_id": "users"}
    export_lookup_fields = ("public_key",)  # a keypair is declared with its key

    def export_reads(self, selected, names):
        # Another user's keypairs are listed only for users a manifest names.
        out = []
        for user in selected.get("users", []):
            domain = names.get("domains", user.fields.get("domain_id"))
            key = (user.fields["name"],)
            if domain is not None and domain.id != names.default_domain_id:
                key = (domain.fields["name"], *key)
            address = Address("users", key)
            out.append(stand_in(self.kind, "-", user=Ref(address)))
        return out

    @classmethod
    def check(cls, c: Checker) -> None:
        if c.state != "present":
            return
        kind = c.spec.get("type", "ssh")
        if c.ok(("public_key",)):
            cls._check_key_text(c, ("public_key",), c.spec["public_key"], kind)
        elif c.ok(("public_key_file",)):
            path = c.spec["public_key_file"]
            if os.path.isfile(path) and os.access(path, os.R_OK):
                try:
                    with open(path, encoding="utf-8") as fh:
                        text = fh.read(64 * 1024)
                except (OSError, UnicodeDecodeError):
                    c.error(("public_key_file",), "the public key file is not UTF-8 text")
                    return
                cls._check_key_text(c, ("public_key_file",), text, kind)

    @classmethod
    def _check_key_text(cls, c: Checker, path: tuple, text: str, kind: str) -> None:
        text = text.strip()
        if "PRIVATE KEY" in text:
            c.error(path, "this is a PRIVATE key: give the public key (the .pub file)")
        elif kind == "x509" and not text.startswith("-----BEGIN CERTIFICATE-----"):
            c.error(path, "an x509 keypair needs a PEM certificate")
        elif kind == "ssh" and not SSH_KEY.match(text):
            c.error(path, "does not look like an OpenSSH public key ('ssh-ed25519 AAAA...')")

    @classmethod
    def natural_key(cls, spec: dict[str, Any]) -> tuple[str, ...]:
        # keypairs.mykey for the tool's own user, keypairs.alice/mykey for another's.
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

    def observe(self, k: Any, user_id: str, own: bool) -> Observed:
        key_type = getattr(k, "type", "ssh")
        fields = {
            "name": k.name,
            "user_id": user_id,
            "own": own,
            "type": key_type,
            "public_key": key_text(k.public_key or "", key_type),
        }
        return Observed(f"{user_id}/{k.name}", fields, k)

    def normalise(self, field_name: str, value: Any) -> Any:
        if field_name == "public_key" and isinstance(value, str):
            return key_text(value)
        return value

    def replace_reason(self, fields: list[str]) -> str:
        return "Nova cannot change a keypair's key: it is deleted and imported again"

    def address_of_observed(self, observed: Observed) -> Address:
        return Address(self.kind, (observed.fields["name"],))

    # --- the key file: a probe, compared in `comparable` -------------------------------
    def probes(self, resource, candidates):
        path = resource.spec.get("public_key_file")
        return [FileText(path)] if path else []

    @staticmethod
    def _file_text(resource, facts) -> str:
        path = resource.spec["public_key_file"]
        if FileText(path) not in facts:
            raise PlanError(f"{resource.address}: {path} was not read for the plan")
        return facts[FileText(path)]

    def comparable(self, resource, observed, desired, facts):
        """public_key_file reads as the spec's path when the live key is the file's key."""
        path = resource.spec.get("public_key_file")
        if path is None:
            return observed
        want = key_text(self._file_text(resource, facts), resource.spec.get("type", "ssh"))
        have = observed.fields.get("public_key") or ""
        shown = path if want == have else short_key(have)
        return Observed(
            observed.id,
            {**observed.fields, "public_key_file": shown},
            observed.raw,
            observed.managed,
        )

    def diff(self, resource, observed, resolver, facts=None):
        change = super().diff(resource, observed, resolver, facts)
        creates = [step for step in change.steps if step.verb == "create"]
        if creates and resource.spec.get("public_key_file"):
            # The key text is part of the plan: apply imports exactly what was compared.
            text = self._file_text(resource, facts or {}).strip()
            for step in creates:
                step.args["public_key"] = text
        return change

    def create_args(self, resource, desired, resolver):
        spec = resource.spec
        args: dict[str, Any] = {
            "name": spec["name"],
            "public_key": spec["public_key"].strip() if "public_key" in spec else None,
            "key_type": spec.get("type", "ssh"),
        }
        user = spec.get("user")
        if isinstance(user, Ref):
            args["user_id"] = resolver.id(user.address)
        return args

    # --- reading --------------------------------------------------------------------
    def read_all(self, cloud, resources, known=None):
        nova = cloud.nova
        me = cloud.user_id
        out = [self.observe(k, me, True) for k in nova.keypairs.list()]
        others = {r.spec["user"].address for r in resources if isinstance(r.spec.get("user"), Ref)}
        user_ids = self._user_ids(cloud, others) if others else {}
        for user_id in sorted(set(user_ids.values()) - {me}):
            out.extend(self.observe(k, user_id, False) for k in nova.keypairs.list(user_id))
        return out

    @staticmethod
    def _user_ids(cloud, users: set[Address]) -> dict[Address, str]:
        """Live ids of the users the manifest names (reads run before ids are known)."""
        domains = {d.name: d.id for d in list_all(cloud, "/domains")}
        out: dict[Address, str] = {}
        for address in users:
            domain = address.key[0] if len(address.key) > 1 else "Default"
            domain_id = domains.get(domain)
            for u in list_all(cloud, "/users", name=address.name):
                if domain_id is None or u.domain_id == domain_id:
                    out[address] = u.id
        return out

    # --- writing --------------------------------------------------------------------
    def create(self, cloud, args, ctx):
        kwargs: dict[str, Any] = {"key_type": args.get("key_type", "ssh")}
        if args.get("user_id"):
            kwargs["user_id"] = args["user_id"]
        k = cloud.nova.keypairs.create(args["name"], args["public_key"], **kwargs)
        user_id = kwargs.get("user_id") or cloud.user_id
        return self.observe(k, user_id, user_id == cloud.user_id)

    def delete(self, cloud, observed, ctx):
        user_id = None if observed.fields.get("own") else observed.fields["user_id"]
        cloud.nova.keypairs.delete(observed.fields["name"], user_id=user_id)
