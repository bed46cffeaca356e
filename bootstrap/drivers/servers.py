"""servers: Nova servers, booted in the project the manifest names.

Read with ONE list call per scope (`all_tenants` for an admin, else the token's project
and any other project of the manifest the user has a role on). Compared as Nova reports
them: flavor by name (2.47+ embeds the flavor's original_name, not its id), image by id,
keypair, networks and security groups by name. Honest about destruction: a new image is
a rebuild and a new flavor a resize (in place, but disruptive: --allow-destroy);
networks, keypair, user_data, availability zone and config drive need a new server.
Waiting uses the apply's one poller (`ctx.poller`, _nova.py); `known_hosts` is written
from the console log, and compared at plan time through a probe of the file's text.
Marker for --prune: the server tags managed-by:openstack-bootstrap and stack:NAME.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from bootstrap import known_hosts
from bootstrap.drivers import _cinder, _nova
from bootstrap.drivers._keystone import my_projects
from bootstrap.drivers._neutron import marker_tags, stack_in, stack_tag
from bootstrap.drivers._nova import (  # noqa: F401  (tests import them from here)
    HIDDEN,
    all_addresses,
    decode_user_data,
    fixed_ports,
    networks_equal,
)
from bootstrap.drivers.base import Driver, resolve
from bootstrap.drivers.ports import port_nic
from bootstrap.errors import CloudError, ResourceFailed
from bootstrap.export import ALWAYS
from bootstrap.model import Address, Ref, Secret
from bootstrap.plan import Action, Change, FieldDiff, Observed, SetDelta, Step, contains_pending
from bootstrap.probes import FileText

DEFAULT_TIMEOUT = 600
# How long after ACTIVE the console may take to show cloud-init's key block.
KEYS_TIMEOUT = 300
DELETE_TIMEOUT = 600


class ServerDriver(Driver):
    kind = "servers"
    clients = ("nova", "identity")
    made_in_token_project = True
    key_fields = ("project", "name")
    references = {
        "project": "projects",
        "image": "images",
        "flavor": "flavors",
        "keypair": "keypairs",
        "server_group": "server_groups",
        "networks[].network": "networks",
        "networks[].port": "ports",
        "security_groups[]": "security_groups",
        "volumes[]": "volumes",
        "boot_volume": "volumes",
    }
    updatable = frozenset(
        {"metadata", "security_groups", "image", "flavor", "known_hosts", "volumes"}
    )
    immutable = frozenset(
        {
            "keypair",
            "networks",
            "user_data",
            "availability_zone",
            "config_drive",
            "server_group",
            "boot_volume",
        }
    )
    destructive_fields = frozenset({"image", "flavor"})
    set_fields = frozenset({"security_groups", "volumes"})
    # Volumes are attached once the server is ACTIVE, one by one in the declared order.
    set_after_create = frozenset({"volumes"})
    map_fields = frozenset({"metadata"})
    secret_fields = frozenset({"user_data"})
    path_fields = {"known_hosts": "write"}
    item_shorthand = {"networks[]": "network"}
    ownership = "tags"
    project_field = "project_id"
    position = 180
    required_for_create = frozenset({"flavor"})
    # Nova names the flavor, keypair, networks and groups: see _nova.export_server.
    export_fields = {"image": ALWAYS, "config_drive": False, "metadata": {}}

    def export(self, observed, names):
        spec = super().export(observed, names)
        return _nova.export_server(spec, observed, names) if spec is not None else None

    # --- pure -----------------------------------------------------------------------
    def observe(self, s: Any) -> Observed:
        info = s.to_dict() if hasattr(s, "to_dict") else dict(s)
        image = info.get("image")
        flavor = info.get("flavor") or {}
        if "OS-EXT-SRV-ATTR:user_data" in info:
            user_data = decode_user_data(info["OS-EXT-SRV-ATTR:user_data"])
        else:
            user_data = HIDDEN
        fields = {
            "name": info.get("name"),
            "project_id": info.get("tenant_id"),
            "status": info.get("status"),
            "image": image.get("id") if isinstance(image, dict) else None,
            "flavor": flavor.get("original_name"),
            "keypair": info.get("key_name"),
            "networks": fixed_ports(info.get("addresses") or {}),
            "security_groups": sorted({g["name"] for g in info.get("security_groups") or []}),
            "metadata": dict(info.get("metadata") or {}),
            "availability_zone": info.get("OS-EXT-AZ:availability_zone"),
            "config_drive": str(info.get("config_drive")).lower() in ("true", "1"),
            "user_data": user_data,
            "addresses": all_addresses(info.get("addresses") or {}),
            "volumes": [v["id"] for v in info.get("os-extended-volumes:volumes_attached") or []],
        }
        if info.get("status") == "ERROR":
            fields["fault"] = _nova.fault_message(s)
        tags = info.get("tags") or []
        return Observed(info["id"], fields, s, _nova.MARKER_TAG in tags, stack_in(tags))

    def desired(self, resource, resolver):
        """As Nova reports them: flavor, keypair, networks, security groups by name."""
        out: dict[str, Any] = {}
        for f in self.compared_fields(resource):
            value = resource.spec[f]
            if f in ("flavor", "keypair") and isinstance(value, Ref):
                out[f] = value.address.name
            elif f == "security_groups":
                out[f] = sorted({ref.address.name for ref in value})
            elif f == "networks":
                out[f] = [
                    port_nic(item, resolver)
                    if "port" in item
                    else {
                        "network": item["network"].address.name,
                        **({"fixed_ip": item["fixed_ip"]} if "fixed_ip" in item else {}),
                    }
                    for item in value
                ]
            else:
                out[f] = self.normalise(f, resolve(value, resolver))
        return out

    def normalise(self, field_name, value):
        if field_name == "user_data" and isinstance(value, str):
            return Secret(value, "inline")
        if field_name == "metadata":
            return {k: str(v) for k, v in (value or {}).items()}
        return value

    def equal(self, field_name, desired, observed):
        if field_name == "user_data" and observed is HIDDEN:
            return True
        if field_name == "networks" and isinstance(observed, list):
            return networks_equal(desired, observed)
        if field_name == "volumes" and not contains_pending(desired):
            return set(desired or []) == set(observed or [])  # attached is attached
        return super().equal(field_name, desired, observed)

    # --- probes: the known_hosts file ---------------------------------------------------
    def probes(self, resource, candidates):
        path = resource.spec.get("known_hosts")
        return [FileText(path, missing_ok=True)] if path else []

    def comparable(self, resource, observed, desired, facts):
        """known_hosts compares as the spec's path while the file has every address."""
        observed = _cinder.boot_volume_apart(observed, desired)
        path = desired.get("known_hosts")
        probe = FileText(path, missing_ok=True) if path else None
        if probe is None or probe not in facts:
            return observed
        missing = known_hosts.missing_addresses(
            facts[probe], observed.fields.get("addresses") or []
        )
        shown = path if not missing else f"{path} (no entry for {', '.join(missing)})"
        return dataclasses.replace(observed, fields={**observed.fields, "known_hosts": shown})

    # --- the decision -------------------------------------------------------------------
    def diff(self, resource, observed, resolver, facts=None):
        if (
            not resource.absent
            and observed is not None
            and observed.fields.get("status") == "ERROR"
        ):
            desired = self.desired(resource, resolver)
            return Change(
                resource.address,
                Action.REPLACE,
                [FieldDiff("status", "ERROR", "ACTIVE")],
                reason=f"the server is in ERROR ({observed.fields.get('fault')}): "
                "it is deleted and booted again",
                resource=resource,
                observed=observed,
                destructive=True,
                steps=self.replace_steps(resource, observed, desired, resolver),
            )
        change = super().diff(resource, observed, resolver, facts)
        if (
            change.action is Action.NOOP
            and observed is not None
            and observed.fields.get("status") == "BUILD"
            and resource.spec.get("wait", True)
        ):
            # Left building by an apply that was killed: this one waits for it.
            timeout = float(resource.spec.get("timeout", DEFAULT_TIMEOUT))
            return Change(
                resource.address,
                Action.UPDATE,
                [FieldDiff("status", "BUILD", "ACTIVE")],
                reason="the server is still building: waited for",
                resource=resource,
                observed=observed,
                steps=[Step("update", {"wait_active": timeout})],
            )
        for step in change.steps:
            if step.verb == "update":
                step.args = self._patch_ids(resource, step.args, resolver)
        return change

    def _patch_ids(self, resource, patch, resolver):
        """The ids Nova's actions take where the comparison used names."""
        spec = resource.spec
        out = dict(patch)
        if "flavor" in out:
            ref = spec["flavor"]
            out["flavor"] = {"id": resolver.id(ref.address), "name": ref.address.name}
        if "security_groups" in out:
            delta = out["security_groups"]
            by_name = {r.address.name: r.address for r in spec.get("security_groups") or []}
            # Added by id (names need not be unique), removed by the name Nova reports.
            out["security_groups"] = SetDelta(
                tuple(resolver.id(by_name[name]) for name in delta.add), delta.remove
            )
        return out

    def update_patch(self, resource, observed, desired, fields):
        patch = super().update_patch(resource, observed, desired, fields)
        path = resource.spec.get("known_hosts")
        if path and "image" in fields:
            patch["known_hosts"] = path  # a rebuilt server has new host keys
        if {"image", "flavor", "known_hosts"} & set(patch):
            patch["timeout"] = float(resource.spec.get("timeout", DEFAULT_TIMEOUT))
        return patch

    def create_args(self, resource, desired, resolver):
        spec = resource.spec
        args: dict[str, Any] = {
            "name": spec["name"],
            "project_id": resolver.id(spec["project"].address),
            "image": resolver.id(spec["image"].address) if "image" in spec else None,
            "flavor": resolver.id(spec["flavor"].address) if "flavor" in spec else None,
            "tags": [_nova.MARKER_TAG],
        }
        if "networks" in spec:
            args["nics"] = [nic(item, resolver) for item in spec["networks"]] or "none"
        else:
            args["nics"] = "auto"
        if "security_groups" in spec:
            args["security_groups"] = [resolver.id(r.address) for r in spec["security_groups"]]
        if "boot_volume" in spec:
            args["block_device_mapping_v2"] = _cinder.boot_from(
                resolver.id(spec["boot_volume"].address)
            )
        if "keypair" in spec:
            args["key_name"] = spec["keypair"].address.name
        if "metadata" in desired:
            args["meta"] = desired["metadata"]
        if "user_data" in spec:
            data = spec["user_data"]
            args["userdata"] = data if isinstance(data, Secret) else Secret(str(data), "inline")
        for f in ("availability_zone", "config_drive"):
            if f in spec:
                args[f] = spec[f]
        if "server_group" in spec:
            args["scheduler_hints"] = {"group": resolver.id(spec["server_group"].address)}
        args["wait"] = bool(spec.get("wait", True))
        args["timeout"] = float(spec.get("timeout", DEFAULT_TIMEOUT))
        if spec.get("known_hosts"):
            args["known_hosts"] = spec["known_hosts"]
        return args

    def update_reason(self, fields):
        why = {
            "image": "a new image rebuilds the server: its root disk is lost",
            "flavor": "a new flavor resizes the server: it is stopped, moved and restarted",
        }
        return "; ".join(why[f] for f in fields)

    def replace_reason(self, fields):
        return (
            f"Nova cannot change a server's {', '.join(fields)} in place: the server is "
            "deleted and booted again (its disks are lost)"
        )

    def address_of_observed(self, observed: Observed) -> Address:
        return Address(
            self.kind, (observed.fields.get("project_id") or "", observed.fields["name"])
        )

    def mark_create(self, steps, stack):
        for step in steps:
            if step.verb == "create":
                step.args["tags"] = [*step.args["tags"], stack_tag(stack)]

    def mark_patch(self, observed, stack):
        return {"tags": marker_tags(observed, stack)}

    # --- reading --------------------------------------------------------------------
    # The server list does not say which group a server is in; the server groups' list
    # names their members: read before the servers, only when the manifest asks.
    reads_after = frozenset({"server_groups"})

    def reads_needed(self, resources):
        if any("server_group" in r.spec for r in resources):
            return self.reads_after
        return frozenset()

    def read_all(self, cloud, resources, known=None):
        out = [self.observe(s) for s in self._list(cloud, resources)]
        if self.reads_needed(resources):
            assert known is not None, "servers read after server_groups (reads_after)"
            group_of = {
                m: g.id for g in known["server_groups"] for m in g.fields.get("members") or []
            }
            for o in out:
                o.fields["server_group"] = group_of.get(o.id)
        return [o for o in out if o.fields["status"] not in ("DELETED", "SOFT_DELETED")]

    def _list(self, cloud, resources) -> list[Any]:
        if _nova.is_admin(cloud):
            # limit=-1: novaclient follows pages until an empty one (2 requests, any size).
            return list(cloud.nova.servers.list(search_opts={"all_tenants": 1}, limit=-1))
        servers = list(cloud.nova.servers.list(limit=-1))
        # A non-admin sees one project per token: other projects of the manifest it has
        # a role on are listed with a token scoped to each.
        wanted = {
            r.spec["project"].address.name
            for r in resources
            if isinstance(r.spec.get("project"), Ref)
        }
        wanted.discard(getattr(cloud.access, "project_name", None))
        if wanted:
            for p in my_projects(cloud):
                if p.name in wanted and p.id != cloud.project_id:
                    scoped = _nova.project_cloud(cloud, p.id)
                    servers.extend(scoped.nova.servers.list(limit=-1))
        return servers

    # --- writing --------------------------------------------------------------------
    def create(self, cloud, args, ctx):
        project_id = args["project_id"]
        scoped = _nova.project_cloud(cloud, project_id)
        kwargs: dict[str, Any] = {"tags": args["tags"], "nics": args["nics"]}
        for f in (
            "security_groups",
            "key_name",
            "meta",
            "availability_zone",
            "config_drive",
            "scheduler_hints",
            "block_device_mapping_v2",
        ):
            if f in args:
                kwargs[f] = args[f]
        if "userdata" in args:
            data = args["userdata"]
            kwargs["userdata"] = data.reveal() if isinstance(data, Secret) else str(data)
        server = _boot(scoped.nova, args["name"], args["image"], args["flavor"], kwargs)
        path = args.get("known_hosts")
        if not args.get("wait", True) and not path:
            return Observed(server.id, {"name": args["name"], "project_id": project_id})
        timeout = float(args.get("timeout", DEFAULT_TIMEOUT))
        ready = self._wait(cloud, ctx, project_id, server.id, _nova.active(None), timeout, "ACTIVE")
        if path:
            self._write_known_hosts(scoped, ctx, path, ready, timeout)
        return self.observe(ready)

    def adopted(self, cloud, observed, args, ctx):
        """A server found after a lost create answer is still booting: wait as create does."""
        path = args.get("known_hosts")
        if not args.get("wait", True) and not path:
            return observed
        project_id = args["project_id"]
        timeout = float(args.get("timeout", DEFAULT_TIMEOUT))
        ready = self._wait(
            cloud, ctx, project_id, observed.id, _nova.active(None), timeout, "ACTIVE"
        )
        if path:
            scoped = _nova.project_cloud(cloud, project_id)
            self._write_known_hosts(scoped, ctx, path, ready, timeout)
        return self.observe(ready)

    @staticmethod
    def _wait(cloud, ctx, project_id, server_id, ready, timeout, what):
        scope, lister = _nova.listing(cloud, project_id)
        return ctx.poller.wait(scope, lister, server_id, ready, timeout, what)

    @staticmethod
    def _write_known_hosts(scoped, ctx, path, server, timeout, addresses=None) -> None:
        """Wait (bounded) for the key block in the console log, then write the file."""
        deadline = time.monotonic() + min(timeout, KEYS_TIMEOUT)
        while True:
            keys = known_hosts.console_keys(scoped, server.id)
            if keys:
                break
            if time.monotonic() >= deadline:
                raise ResourceFailed(
                    "the console log shows no SSH host keys (cloud-init's "
                    f"'{known_hosts.BEGIN}' block); {path} was not written"
                )
            time.sleep(2)
        if addresses is None:
            addresses = all_addresses(getattr(server, "addresses", None) or {})
        with ctx.lock(path):
            known_hosts.update_file(path, addresses, keys)

    def update(self, cloud, observed, patch, ctx):
        project_id = observed.fields["project_id"]
        scoped = cloud if _nova.is_admin(cloud) else _nova.project_cloud(cloud, project_id)
        nova = scoped.nova
        timeout = float(patch.get("timeout", patch.get("wait_active", DEFAULT_TIMEOUT)))
        server = observed.raw
        if "wait_active" in patch:
            server = self._wait(
                cloud, ctx, project_id, observed.id, _nova.active(None), timeout, "ACTIVE"
            )
        if "image" in patch:
            nova.servers.rebuild(observed.id, patch["image"])
            server = self._wait(
                cloud, ctx, project_id, observed.id, _nova.active(None), timeout, "ACTIVE"
            )
        if "flavor" in patch:
            server = self._resize(cloud, ctx, nova, observed, patch["flavor"], timeout)
        if "tags" in patch:  # the ownership marker
            for tag in patch["tags"].add:
                nova.servers.add_tag(observed.id, tag)
            for tag in patch["tags"].remove:
                nova.servers.delete_tag(observed.id, tag)
        if "metadata" in patch:
            delta = patch["metadata"]
            if delta.set:
                nova.servers.set_meta(observed.id, dict(delta.set))
            if delta.unset:
                nova.servers.delete_meta(observed.id, list(delta.unset))
        if "security_groups" in patch:
            self._change_groups(cloud, project_id, observed.id, patch["security_groups"])
        if "volumes" in patch:
            _cinder.attach_volumes(scoped, observed.id, patch["volumes"])
        if patch.get("known_hosts"):
            # A rebuilt server has new host keys; a missing entry needs the keys again.
            listed = all_addresses(getattr(server, "addresses", None) or {})
            self._write_known_hosts(
                scoped,
                ctx,
                patch["known_hosts"],
                server if server is not None else observed.raw,
                timeout,
                listed or list(observed.fields.get("addresses") or []),
            )

    @staticmethod
    def _change_groups(cloud, project_id, server_id, delta) -> None:
        """Nova looks a group name up in the project of the token (an admin's token too:
        "Security group default not associated with the instance", 404), so these calls
        use a token scoped to the server's project."""
        nova = _nova.project_cloud(cloud, project_id).nova
        for name in delta.add:
            nova.servers.add_security_group(server_id, name)
        for name in delta.remove:
            nova.servers.remove_security_group(server_id, name)

    def _resize(self, cloud, ctx, nova, observed, flavor, timeout):
        target = flavor["name"]
        nova.servers.resize(observed.id, flavor["id"])

        def resized(server: Any) -> bool:
            if server is None:
                return False
            if server.status == "VERIFY_RESIZE":
                return True
            if server.status == "ERROR":
                raise ResourceFailed(f"resize failed: {_nova.fault_message(server)}")
            if server.status == "ACTIVE" and _nova.task_state(server) is None:
                if (server.flavor or {}).get("original_name") == target:
                    return True  # confirmed already (resize_confirm_window)
                raise ResourceFailed("resize failed")
            return False

        pid = observed.fields["project_id"]
        try:
            server = self._wait(cloud, ctx, pid, observed.id, resized, timeout, "VERIFY_RESIZE")
        except ResourceFailed as exc:
            if exc.message != "resize failed":
                raise
            # Nova rolled the resize back: the reason is in the instance action, not a fault.
            reason = _nova.action_error(nova, observed.id, "resize")
            raise ResourceFailed(
                f"resize to flavor {target} failed and was rolled back: {reason}"
            ) from None
        if server.status == "VERIFY_RESIZE":
            nova.servers.confirm_resize(observed.id)
            server = self._wait(cloud, ctx, pid, observed.id, _nova.active(None), timeout, "ACTIVE")
        return server

    def delete(self, cloud, observed, ctx):
        project_id = observed.fields.get("project_id") or cloud.project_id
        scoped = cloud if _nova.is_admin(cloud) else _nova.project_cloud(cloud, project_id)
        scoped.nova.servers.delete(observed.id)
        # Wait until it is gone: a next plan must not find it (or its name) still there.
        self._wait(cloud, ctx, project_id, observed.id, _nova.gone, DELETE_TIMEOUT, "deletion")


def nic(item: dict[str, Any], resolver: Any) -> dict[str, str]:
    if "port" in item:
        return {"port-id": resolver.id(item["port"].address)}
    out = {"net-id": resolver.id(item["network"].address)}
    ip = item.get("fixed_ip")
    if ip:
        out["v6-fixed-ip" if ":" in ip else "v4-fixed-ip"] = ip
    return out


def _boot(nova: Any, name: str, image: str | None, flavor: str, kwargs: dict[str, Any]) -> Any:
    """Boot one server; Nova's 400 "Unable to find security_group" is marked retryable.

    Measured on the local cloud: 8 servers booted at once into a new project made 6 of
    them fail so (Nova lists the project's groups through Neutron, which creates the
    project's default group on that read; concurrent reads race). The 400 means no
    server was created, so apply's one retry policy may ask again.
    """
    from novaclient import exceptions as nova_exc

    try:
        return nova.servers.create(name, image, flavor, **kwargs)
    except nova_exc.BadRequest as exc:
        if "Unable to find security_group" not in str(exc):
            raise
        raise CloudError(
            f"{exc} (Nova raced Neutron creating the project's default security group; "
            "no server was made)",
            status=400,
            retryable=True,
        ) from exc
