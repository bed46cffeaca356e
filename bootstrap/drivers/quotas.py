"""quotas: a project's compute (Nova), network (Neutron) and volume (Cinder) quotas.

Only the keys the manifest lists are managed: an unlisted key is never read into the
diff nor written, so another tool's raise of `ram` survives a manifest that sets only
`instances`. `state: absent` puts the LISTED keys back to the cloud's defaults (an
explicit value equal to the default: the services' "delete quotas" call resets every
key of the project, which would touch unlisted ones) — the plan shows each key's way
back (`instances: 40 -> 10`); to simply stop managing a key, leave it out.

Reads, per service the manifest uses: Nova has no list of quota sets, so one GET per
manifest project plus one for the defaults (N+1); Neutron lists every project with
non-default quotas in ONE call (a project not listed has the defaults) plus one for the
defaults (2); Cinder is like Nova (N+1). The projects' and domains' lists, read before
this kind (`reads_after`), map names to ids: no Keystone request of its own.
Quotas have no place for an ownership marker: --prune never touches them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bootstrap.drivers.base import Driver, Known
from bootstrap.errors import CloudError, PlanError
from bootstrap.model import DEFAULT_DOMAIN, Address
from bootstrap.plan import Action, Change, FieldDiff, Observed, Step
from bootstrap.probes import Probe

if TYPE_CHECKING:
    from bootstrap.cloud import Cloud
    from bootstrap.manifest.checks import Checker

SERVICES = ("compute", "network", "volume")
# The block-storage API's catalog types, newest first.
VOLUME_TYPES = ("block-storage", "volumev3")


def catalog_has(cloud: Cloud, service_types: tuple[str, ...]) -> bool:
    """Does the token's catalog list one of these service types (no request)?"""
    catalog = cloud.access.service_catalog
    return any(catalog.get_endpoints(service_type=t).get(t) for t in service_types)


@dataclass(frozen=True)
class InCatalog(Probe):
    """Whether the cloud's catalog lists a service (read from the token, no request)."""

    service_types: tuple[str, ...]

    def run(self, cloud: Cloud) -> bool:
        return catalog_has(cloud, self.service_types)


def _raise_for(response: Any, what: str) -> Any:
    if response.status_code >= 400:
        import openstack.exceptions

        openstack.exceptions.raise_from_response(response, error_message=what)
    return response.json()


def _ints(values: dict[str, Any]) -> dict[str, int]:
    """The numeric quota keys (drops `id`, `project_id`, `tenant_id`)."""
    return {k: int(v) for k, v in values.items() if isinstance(v, int) and not isinstance(v, bool)}


def project_ids(known: Known, addresses: list[Address]) -> dict[Address, str]:
    """Live ids of the manifest's projects, from the domains' and projects' lists (pure).
    A non-admin's empty domain list leaves the Default domain's id "default"."""
    domains = {o.fields.get("name"): o.id for o in known["domains"]}
    domains.setdefault(DEFAULT_DOMAIN, "default")
    by_key = {(o.fields.get("domain_id"), o.fields.get("name")): o.id for o in known["projects"]}
    out = {}
    for address in addresses:
        domain = address.key[0] if len(address.key) > 1 else DEFAULT_DOMAIN
        found = by_key.get((domains.get(domain), address.name))
        if found:
            out[address] = found
    return out


class QuotaDriver(Driver):
    clients = ("nova", "sdk")
    kind = "quotas"
    key_fields = ("project",)
    references = {"project": "projects"}
    updatable = frozenset(SERVICES)
    ownership = None
    position = 25
    needs_admin = True
    replace_is_destructive = False

    @classmethod
    def check(cls, c: Checker) -> None:
        if not any(c.spec.get(s) for s in SERVICES):
            c.error((), "lists no quota: give compute, network or volume keys")

    # --- matching and deciding (pure) -------------------------------------------------
    def identity(self, resource, resolver):
        project = resolver.live(resource.spec["project"].address)
        return None if project is None else {"project_id": project}

    def address_of_observed(self, observed: Observed) -> Address:
        return Address(self.kind, (str(observed.fields.get("project_id")),))

    def probes(self, resource, candidates):
        return [InCatalog(VOLUME_TYPES)] if resource.spec.get("volume") else []

    @staticmethod
    def wanted(resource) -> dict[str, dict[str, int]]:
        return {s: dict(resource.spec[s]) for s in SERVICES if resource.spec.get(s)}

    def diff(self, resource, observed, resolver, facts=None):
        address = resource.address
        wanted = self.wanted(resource)
        # The engine runs no probes for absent resources: their volume keys were read only
        # where the catalog has Cinder (read_all), which _known checks below.
        if (
            "volume" in wanted
            and not resource.absent
            and not (facts or {}).get(InCatalog(VOLUME_TYPES), False)
        ):
            raise PlanError(
                f"{address}: the manifest sets volume quotas, but this cloud's catalog has no "
                f"block-storage service ({' or '.join(VOLUME_TYPES)}); remove the volume "
                "keys or deploy Cinder. Nothing was changed."
            )
        if resource.absent:
            if observed is None:
                return Change(address, Action.NOOP, reason="absent as asked", resource=resource)
            defaults = observed.fields.get("defaults") or {}
            target = {
                s: {k: self._known(address, defaults.get(s) or {}, s, k) for k in keys}
                for s, keys in wanted.items()
            }
            reason = "state: absent: the listed keys go back to the cloud's defaults"
        else:
            target = wanted
            reason = "quotas differ"
        if observed is None:
            # The project is created by this plan: its quotas are set right after it.
            fields = [
                FieldDiff(f"{s}.{k}", None, v)
                for s, keys in target.items()
                for k, v in keys.items()
            ]
            args = {"project_id": resolver.id(resource.spec["project"].address), **target}
            return Change(
                address,
                Action.CREATE,
                fields,
                reason="the project is new",
                resource=resource,
                steps=[Step("create", args)],
            )
        diffs: list[FieldDiff] = []
        patch: dict[str, dict[str, int]] = {}
        ignored = resource.lifecycle.ignore_changes
        for s, keys in target.items():
            live = observed.fields.get(s) or {}
            for k, want in keys.items():
                have = self._known(address, live, s, k)
                if have != want and s not in ignored:
                    diffs.append(FieldDiff(f"{s}.{k}", have, want))
                    patch.setdefault(s, {})[k] = want
        if not diffs:
            return Change(address, Action.NOOP, resource=resource, observed=observed)
        return Change(
            address,
            Action.UPDATE,
            diffs,
            reason=reason,
            resource=resource,
            observed=observed,
            steps=[Step("update", patch)],
        )

    @staticmethod
    def _known(address: Address, values: dict[str, int], service: str, key: str) -> int:
        if key not in values:
            raise PlanError(
                f"{address}: this cloud has no {service} quota {key!r}; it has: "
                f"{', '.join(sorted(values)) or 'none'}"
            )
        return values[key]

    # --- reading ----------------------------------------------------------------------
    # The manifest's project ids come from the projects' and domains' lists the engine
    # has read already (no second list of either per plan).
    reads_after = frozenset({"domains", "projects"})

    def reads_needed(self, resources):
        return self.reads_after if resources else frozenset()

    def read_all(self, cloud, resources, known=None):
        if not resources:
            return []
        assert known is not None, "quotas read after domains and projects (reads_after)"
        used = {s for r in resources for s in SERVICES if r.spec.get(s)}
        ids = project_ids(known, [r.spec["project"].address for r in resources])
        if not ids:
            return []
        out = {pid: {"project_id": pid, "defaults": {}} for pid in ids.values()}
        any_pid = next(iter(out))
        if "compute" in used:
            nova = cloud.nova
            defaults = _ints(nova.quotas.defaults(any_pid).to_dict())
            for pid, fields in out.items():
                fields["compute"] = _ints(nova.quotas.get(pid).to_dict())
                fields["defaults"]["compute"] = defaults
        if "network" in used:
            net = cloud.network
            defaults = _ints(_raise_for(net.get(f"/quotas/{any_pid}/default"), "quotas")["quota"])
            every = _raise_for(net.get("/quotas"), "quotas")["quotas"]
            listed = {q["project_id"]: _ints(q) for q in every}
            for pid, fields in out.items():
                fields["network"] = {**defaults, **listed.get(pid, {})}
                fields["defaults"]["network"] = defaults
        if "volume" in used and catalog_has(cloud, VOLUME_TYPES):
            block = cloud.sdk.block_storage
            url = f"/os-quota-sets/{any_pid}/defaults"
            defaults = _ints(_raise_for(block.get(url), "quotas")["quota_set"])
            for pid, fields in out.items():
                got = _raise_for(block.get(f"/os-quota-sets/{pid}"), "quotas")["quota_set"]
                fields["volume"] = _ints(got)
                fields["defaults"]["volume"] = defaults
        return [Observed(pid, fields) for pid, fields in out.items()]

    # --- writing ----------------------------------------------------------------------
    def create(self, cloud, args, ctx):
        pid = args["project_id"]
        self._write(cloud, pid, {s: v for s, v in args.items() if s in SERVICES})
        return Observed(pid, {"project_id": pid})

    def update(self, cloud, observed, patch, ctx):
        self._write(cloud, observed.id, patch)

    def delete(self, cloud, observed, ctx):
        # Never planned: `state: absent` is an update back to the defaults (see above).
        raise CloudError("quotas are never deleted", str(self.address_of_observed(observed)))

    @staticmethod
    def _write(cloud, project_id: str, values: dict[str, dict[str, int]]) -> None:
        if values.get("compute"):
            cloud.nova.quotas.update(project_id, **values["compute"])
        if values.get("network"):
            body = {"quota": values["network"]}
            _raise_for(cloud.network.put(f"/quotas/{project_id}", json=body), "quotas")
        if values.get("volume"):
            body = {"quota_set": values["volume"]}
            block = cloud.sdk.block_storage
            _raise_for(block.put(f"/os-quota-sets/{project_id}", json=body), "quotas")
