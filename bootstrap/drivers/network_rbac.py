"""network_rbac: Neutron RBAC policies on networks (share a network with a project, or
make it usable as external by a project).

Keyed by what a policy IS: network + target project + action
(`network_rbac.acme/net/demo/access_as_shared`; `*` for every project). Every field is
part of that key, so there is nothing to update: a policy exists or it does not.
Read with ONE list call (`object_type=network`). Neutron itself makes the `*` policies
of a network declared `shared: true` or `external: true`; declaring one here adopts it.

RBAC policies take no tags and no description: there is no room for an ownership
marker, so `--prune` never deletes one; `state: absent` does.
"""

from __future__ import annotations

from typing import Any

from bootstrap.drivers.base import Driver
from bootstrap.model import Address, Ref
from bootstrap.plan import Observed

# The target of a policy for every project.
EVERY_PROJECT = "*"


class NetworkRBACDriver(Driver):
    clients = ("sdk",)
    kind = "network_rbac"
    key_fields = ("network", "target_project", "action")
    references = {"network": "networks", "target_project": "projects"}
    updatable = frozenset()
    immutable = frozenset()
    # Without it the project loses the network; nothing else is lost.
    replace_is_destructive = False
    ownership = None
    position = 158
    required_for_create = frozenset({"network"})

    @classmethod
    def natural_key(cls, spec: dict[str, Any]) -> tuple[str, ...]:
        net = spec["network"]
        target = spec.get("target_project")
        parts = list(net.address.key) if isinstance(net, Ref) else [str(net)]
        parts.append(target.address.name if isinstance(target, Ref) else EVERY_PROJECT)
        parts.append(str(spec.get("action") or "access_as_shared"))
        return tuple(parts)

    @staticmethod
    def action(resource) -> str:
        return resource.spec.get("action") or "access_as_shared"

    def identity(self, resource, resolver):
        spec = resource.spec
        network = resolver.live(spec["network"].address)
        target = spec.get("target_project")
        target_id = resolver.live(target.address) if isinstance(target, Ref) else EVERY_PROJECT
        if network is None or target_id is None:
            return None
        return {"network": network, "target_project": target_id, "action": self.action(resource)}

    def observe(self, p) -> Observed:
        fields = {
            "network": p.object_id,
            "target_project": p.target_project_id,
            "action": p.action,
            "project_id": p.project_id,
        }
        return Observed(p.id, fields, p, False, None)

    def address_of_observed(self, observed):
        f = observed.fields
        return Address(
            self.kind, (str(f.get("network")), str(f.get("target_project")), str(f.get("action")))
        )

    # --- plan time (pure) -------------------------------------------------------------
    def create_args(self, resource, desired, resolver):
        target = resource.spec.get("target_project")
        return {
            "object_type": "network",
            "object_id": resolver.id(resource.spec["network"].address),
            "target_project_id": (
                resolver.id(target.address) if isinstance(target, Ref) else EVERY_PROJECT
            ),
            "action": self.action(resource),
        }

    # --- I/O ----------------------------------------------------------------------------
    def read_all(self, cloud, resources, known=None):
        return [self.observe(p) for p in cloud.network.rbac_policies(object_type="network")]

    def create(self, cloud, args, ctx):
        return self.observe(cloud.network.create_rbac_policy(**args))

    def delete(self, cloud, observed, ctx):
        cloud.network.delete_rbac_policy(observed.id, ignore_missing=False)
