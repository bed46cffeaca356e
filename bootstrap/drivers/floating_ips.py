"""floating_ips: a floating IP from an external network, attached to a server.

Keyed by (project, server): a floating IP is the one whose port belongs to the server
(Neutron's port_details give the port's device_id, so ONE list call reads them all).
A floating IP with the manifest's `address` is adopted even when it hangs loose or sits
on another server: it is then (re)attached, in place.

Or keyed by (project, port) with `port:` instead of `server:`: attached to that one
port (a port of the ports kind: a VIP, a server's chosen NIC).

Detached out of band, a floating IP no longer names its server: the tool's own ones
carry a second tag, `server:<server id>` (or `port:<port id>`; written by the step that
completes the create, and by every re-attach), so a loose one is found again and planned
as a re-attach of the same address, not as a new allocation that would leak the old one
and change the server's public address.

When the manifest gives the server a `known_hosts` file, the plan carries its path in
the create (or re-attach) step, and apply adds the floating address to that file with
the host keys the file already holds for the server's fixed addresses: those were read
from the console log when the server booted, earlier in the same apply or in another.
Only when the file has none (written by hand, or lost) is the console log read again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from bootstrap import known_hosts
from bootstrap.cloud import classify
from bootstrap.drivers import _nova
from bootstrap.drivers._neutron import (
    TAGS,
    NeutronDriver,
    change_tags,
    check_external_network,
    completing,
    ip,
    is_managed,
    stack_of,
    subnets_by_network,
    text,
)
from bootstrap.drivers.ports import port_network
from bootstrap.errors import AmbiguousResource, CloudError, NotFound, ResourceFailed
from bootstrap.export import ALWAYS
from bootstrap.model import Address, Manifest, Ref, Resource
from bootstrap.plan import Observed, SetDelta

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker

# What a floating IP is attached to: a server (any of its ports) or one port.
TARGETS = ("server", "port")
# The update-step argument that (re)writes the tag naming what a floating IP was made
# for, "server:<id>" or "port:<id>" (Neutron tags take no "/"): {"server": id}.
CLAIM = "claim"


def claimed_by(tags: Any) -> str | None:
    """The "server:<id>" / "port:<id>" tag of a tool-made floating IP (None: none)."""
    return next((t for t in tags or [] if t.split(":", 1)[0] in TARGETS), None)


def target_of(spec: dict[str, Any]) -> str:
    """"server" or "port": what the manifest attaches this floating IP to."""
    return "port" if spec.get("port") is not None and spec.get("server") is None else "server"


class FloatingIPDriver(NeutronDriver):
    kind = "floating_ips"
    # The server's own key already holds its project: floating_ips.acme/web-1; on a
    # port: floating_ips.acme/port:vip.
    key_fields = ("server", "port")
    references = {
        "project": "projects",
        "server": "servers",
        "port": "ports",
        "network": "networks",
    }
    # The target is the key, but an adopted address may need (re)attaching.
    updatable = frozenset({"description", "server", "port"})
    immutable = frozenset({"network", "address"})
    ownership = "tags"
    position = 170
    required_for_create = frozenset({"network"})
    # Allocating a chosen address is admin-only in Neutron's default policy
    # (create_floatingip:floating_ip_address); adopting one already allocated is not.
    admin_fields = {"address": None}
    # Only addresses attached to a server have a natural key (the server's).
    export_fields = {"network": ALWAYS, "address": ALWAYS, "description": ""}

    def export(self, observed, names):
        server = names.get("servers", observed.fields.get("server"))
        if server is None:
            return None
        spec = super().export(observed, names)
        project = names.link("projects", observed.fields.get("project_id"))
        if spec is None or project is None:
            return None
        return {"server": spec.pop("server"), "project": project, **spec}

    @classmethod
    def natural_key(cls, spec):
        target = target_of(spec)
        ref = spec.get(target)
        key = list(ref.address.key) if isinstance(ref, Ref) else ["", str(ref or "")]
        if target == "port":
            key[-1] = f"port:{key[-1]}"
        return tuple(key)

    @classmethod
    def implicit_dependencies(cls, manifest: Manifest) -> Iterator[tuple[Address, Address, str]]:
        # A floating IP can only be associated once a router joins the server's subnet to
        # the external network: it waits for routers with an interface on those subnets.
        subnets_of = subnets_by_network(manifest)
        routers_on: dict[Address, list[Resource]] = {}
        for router in manifest.of_kind("routers"):
            for iface in router.spec.get("interfaces") or []:
                if isinstance(iface, Ref):
                    routers_on.setdefault(iface.address, []).append(router)
        for fip in manifest.of_kind(cls.kind):
            server_ref = fip.spec.get("server")
            server = manifest.get(server_ref.address) if isinstance(server_ref, Ref) else None
            if server is not None:
                items = server.spec.get("networks") or []
            elif isinstance(fip.spec.get("port"), Ref):
                items = [{"port": fip.spec["port"]}]
            else:
                continue
            for item in items:
                net = port_network(manifest, item)
                if net is None:
                    continue
                for s in subnets_of.get(net.address, []):
                    for router in routers_on.get(s.address, []):
                        if fip.absent or not router.absent:
                            why = f"{target_of(fip.spec)} (routed by {router.address})"
                            yield router.address, fip.address, why

    @classmethod
    def check(cls, c: Checker) -> None:
        check_external_network(c, ("network",))

    def observe(self, f, server=None) -> Observed:
        details = f.port_details or {}
        fields = {
            "project_id": f.project_id,
            "server": details.get("device_id") or server,
            "port": f.port_id,
            "network": f.floating_network_id,
            "address": ip(f.floating_ip_address),
            "description": text(f.description),
            # Not compared: what match uses to find a detached one again.
            "claimed_by": claimed_by(f.tags or []),
        }
        return Observed(f.id, fields, f, is_managed(f), stack_of(f))

    def normalise(self, field_name, value):
        if field_name == "description":
            return text(value)
        if field_name == "address":
            return ip(value)
        return value

    def identity(self, resource, resolver):
        target = target_of(resource.spec)
        ident = {
            "project_id": resolver.live(resource.spec["project"].address),
            target: resolver.live(resource.spec[target].address),
        }
        # The server (port) may not exist yet: the address is then created after it.
        if None in ident.values():
            return None
        return ident

    def match(self, resource, observed, resolver):
        found = super().match(resource, observed, resolver)
        if found is not None:
            return found
        project = resolver.live(resource.spec["project"].address)
        if project is None:
            return None
        address = resource.spec.get("address")
        if address:
            same = [
                o
                for o in observed
                if o.fields.get("project_id") == project and o.fields.get("address") == ip(address)
            ]
            return same[0] if same else None
        # Detached out of band: a loose one of the project tagged for this target.
        target = target_of(resource.spec)
        live = resolver.live(resource.spec[target].address)
        loose = [
            o
            for o in observed
            if o.fields.get("project_id") == project
            and not o.fields.get("port")
            and live is not None
            and o.fields.get("claimed_by") == f"{target}:{live}"
        ]
        if len(loose) > 1:
            ids = ", ".join(o.id for o in loose)
            raise AmbiguousResource(
                f"{len(loose)} detached floating IPs are tagged for this {target} ({ids}); "
                "the tool will not guess which one the manifest means: delete the extra ones "
                "or give the address",
                address=str(resource.address),
            )
        return loose[0] if loose else None

    def address_of_observed(self, observed):
        f = observed.fields
        return Address(self.kind, (str(f.get("project_id")), str(f.get("address") or observed.id)))

    # --- plan time (pure) -------------------------------------------------------------
    @staticmethod
    def _known_hosts(resource, resolver) -> str | None:
        """The known_hosts file the manifest gives this floating IP's server, if any."""
        if target_of(resource.spec) != "server":
            return None
        server = resolver.resource(resource.spec["server"].address)
        return server.spec.get("known_hosts") if server is not None else None

    def create_args(self, resource, desired, resolver):
        spec = resource.spec
        args: dict[str, Any] = {
            "project_id": resolver.id(spec["project"].address),
            "floating_network_id": desired.get("network"),
        }
        target = target_of(spec)
        args[target] = resolver.id(spec[target].address)
        if desired.get("address"):
            args["floating_ip_address"] = desired["address"]
        if "description" in desired:
            args["description"] = desired["description"]
        path = self._known_hosts(resource, resolver)
        if path:
            args["known_hosts"] = path
        return args

    def plan_create(self, resource, desired, resolver):
        steps = super().plan_create(resource, desired, resolver)
        # The completing update also tags it for its target (found again when detached).
        target = target_of(resource.spec)
        steps[-1].args[CLAIM] = {target: resolver.id(resource.spec[target].address)}
        return steps

    def diff(self, resource, observed, resolver, facts=None):
        change = super().diff(resource, observed, resolver, facts)
        path = self._known_hosts(resource, resolver) if not resource.absent else None
        for step in change.steps:
            target = next((t for t in TARGETS if t in step.args), None)
            if step.verb == "update" and target is not None:
                # Re-attached: tagged for its (maybe new) target; its address joins the
                # server's known_hosts file.
                tag = f"{target}:{step.args[target]}"
                if observed is None or observed.fields.get("claimed_by") != tag:
                    step.args[CLAIM] = {target: step.args[target]}
                if path:
                    step.args["known_hosts"] = path
        return change

    # --- I/O ----------------------------------------------------------------------------
    def sdk_class(self):
        from openstack.network.v2.floating_ip import FloatingIP

        return FloatingIP

    def read_all(self, cloud, resources, known=None):
        fips = list(cloud.network.ips())
        servers = {}
        if any(f.port_id and not f.port_details for f in fips):
            # Without the fip-port-details extension: one ports list for the device ids.
            servers = {p.id: p.device_id for p in cloud.network.ports()}
        return [self.observe(f, servers.get(f.port_id)) for f in fips]

    def _server_ports(self, cloud, server_id):
        """The server's ports, those with an IPv4 address first (a floating IP is IPv4)."""
        ports = list(cloud.network.ports(device_id=server_id))
        if not ports:
            raise NotFound(f"server {server_id} has no network port to attach a floating IP to")

        def v4_first(p):
            has_v4 = any(":" not in (x.get("ip_address") or ":") for x in p.fixed_ips or [])
            return (not has_v4, p.created_at or "", p.id)

        return sorted(ports, key=v4_first)

    def _on_some_port(self, ports, call):
        """Try the server's ports in turn: only a routed one can take a floating IP."""
        last: BaseException | None = None
        for port in ports:
            try:
                return call(port.id)
            except Exception as exc:  # noqa: BLE001 - "not reachable" tries the next port
                err = classify(exc)
                if err.status not in (400, 404) or err.retryable:
                    raise
                last = exc
        assert last is not None
        raise last

    def _add_to_known_hosts(self, cloud, ctx, path, project_id, server_id, ports, address):
        """Give the floating address the keys the file holds for the server's fixed ones."""
        fixed = [x["ip_address"] for p in ports for x in p.fixed_ips or [] if x.get("ip_address")]
        with ctx.lock(path):
            keys = known_hosts.keys_for(known_hosts.read_text(path), fixed)
            if not keys:
                scoped = cloud if _nova.is_admin(cloud) else _nova.project_cloud(cloud, project_id)
                keys = known_hosts.console_keys(scoped, server_id)
            if not keys:
                raise ResourceFailed(
                    f"no SSH host keys for server {server_id} in {path} nor in its console "
                    f"log: cannot add {address} to {path}"
                )
            known_hosts.update_file(path, [address], keys)

    def create(self, cloud, args, ctx):
        server_id, network_id = args.get("server"), args.get("floating_network_id")
        if not (server_id or args.get("port")) or not network_id:
            raise CloudError(
                "a floating IP needs its server (or port) and its external network to exist"
            )
        attrs = {
            k: args[k]
            for k in ("project_id", "floating_network_id", "floating_ip_address", "description")
            if k in args
        }
        if args.get("port"):
            return self.observe(cloud.network.create_ip(port_id=args["port"], **attrs))
        ports = self._server_ports(cloud, server_id)
        f = self._on_some_port(
            ports, lambda port_id: cloud.network.create_ip(port_id=port_id, **attrs)
        )
        if args.get("known_hosts"):
            self._add_to_known_hosts(
                cloud,
                ctx,
                args["known_hosts"],
                args["project_id"],
                server_id,
                ports,
                ip(f.floating_ip_address),
            )
        return self.observe(f, server_id)

    def update(self, cloud, observed, patch, ctx):
        def run():
            if TAGS in patch:
                change_tags(cloud, self.sdk_class(), observed.id, patch[TAGS])
            if patch.get(CLAIM):
                ((target, target_id),) = patch[CLAIM].items()
                new, old = f"{target}:{target_id}", observed.fields.get("claimed_by")
                delta = SetDelta(add=(new,), remove=(old,) if old and old != new else ())
                change_tags(cloud, self.sdk_class(), observed.id, delta)
            if "description" in patch:
                cloud.network.update_ip(observed.id, description=patch["description"])
            if "port" in patch:
                cloud.network.update_ip(observed.id, port_id=patch["port"])
            if "server" in patch:
                ports = self._server_ports(cloud, patch["server"])
                self._on_some_port(
                    ports, lambda port_id: cloud.network.update_ip(observed.id, port_id=port_id)
                )
                address = observed.fields.get("address")
                if patch.get("known_hosts") and address:
                    self._add_to_known_hosts(
                        cloud,
                        ctx,
                        patch["known_hosts"],
                        observed.fields.get("project_id"),
                        patch["server"],
                        ports,
                        address,
                    )

        completing("floating IP", observed.id, patch, run)

    def delete(self, cloud, observed, ctx):
        cloud.network.delete_ip(observed.id, ignore_missing=False)
