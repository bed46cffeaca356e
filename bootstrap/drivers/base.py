"""The driver contract: one class per resource kind, registered when it is defined.

A driver declares, as data, what the manifest loader needs to know about its kind
(natural key, references, secret fields) and what the planner needs (updatable and
immutable fields). Its I/O is confined to `read_all`, `create`, `update` and `delete`;
everything else is a pure function of desired and observed state.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from bootstrap.drivers._registry import (  # noqa: F401  (imported from here too)
    _REGISTRY,
    driver_modules,
    kinds,
    registry,
)
from bootstrap.errors import AmbiguousResource
from bootstrap.model import (
    DEFAULT_DOMAIN,
    MASK,
    Address,
    Manifest,
    Ref,
    Resource,
    Secret,
    iter_refs,
)
from bootstrap.plan import (
    Action,
    Change,
    FieldDiff,
    Observed,
    Resolver,
    Step,
    contains_pending,
    is_pending,
    map_delta,
    pending_in,
    set_delta,
    where,
)

if TYPE_CHECKING:
    from bootstrap.apply import ApplyContext
    from bootstrap.cloud import Cloud
    from bootstrap.manifest.checks import Checker
    from bootstrap.probes import Facts, Probe

# The lists already read, by kind, that a read builds on (see Driver.reads_after).
Known = Mapping[str, list[Observed]]


class Driver:
    # --- declarations used by the manifest loader --------------------------------------
    kind: ClassVar[str]
    # Spec fields whose values form the natural key, outermost first (the name last).
    # A `domain` key part equal to the Default domain is left out of the address.
    key_fields: ClassVar[tuple[str, ...]] = ("name",)
    # Reference fields: a path into the spec -> the kind it names. Paths: "domain",
    # "members[]" (each list item), "rules[].remote_group", "external_gateway.network".
    references: ClassVar[dict[str, str]] = {}
    # Fields whose value may be a secret ({env: X} / {file: Y}); values are masked.
    secret_fields: ClassVar[frozenset[str]] = frozenset()
    # Secret fields that should not be written inline (a warning when they are).
    warn_inline_secret: ClassVar[frozenset[str]] = frozenset()
    # Local paths, resolved against the manifest file's folder ("~" expanded); "read" paths
    # must name an existing file, "write" paths are only made absolute.
    path_fields: ClassVar[dict[str, str]] = {}
    # List items that may be written as a bare name: {"networks[]": "network"} turns
    # `- demo-net` into `{network: demo-net}` before references are resolved.
    item_shorthand: ClassVar[dict[str, str]] = {}
    # A shorthand field copied into several fields: {"rules[].port": ("port_range_min", ...)}.
    field_shorthand: ClassVar[dict[str, tuple[str, ...]]] = {}
    # Defaults filled into list items (items are values compared whole, unlike resource
    # fields, which stay unmanaged when left out).
    item_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    # Where the kind's section comes in the manifest, plans and the published schema
    # (identity, catalog, compute, network); also breaks ties in the walk order.
    position: ClassVar[int]
    # The Cloud clients (properties of bootstrap.cloud.Cloud) this kind reads through:
    # built, and their libraries imported, only when a kind that needs them is read.
    # The first one names the service whose adaptive write limit the kind's changes share.
    clients: ClassVar[tuple[str, ...]] = ()
    # Clients only its writes need, built before an apply that changes the kind.
    write_clients: ClassVar[tuple[str, ...]] = ()
    # `read_all` lists everything whatever the manifest holds (it ignores `resources`):
    # the command line may start that read before the manifest has loaded.
    reads_alone: ClassVar[bool] = False
    # Writes need the admin role under the services' default policies.
    needs_admin: ClassVar[bool] = False
    # Planning needs the Default domain's live id (a Keystone kind scoped by domain).
    needs_default_domain: ClassVar[bool] = False
    # Fields (dotted spec paths) the default policies reserve to admins even where the
    # kind itself is not: path -> the values that need admin, or None for any value.
    admin_fields: ClassVar[dict[str, tuple[Any, ...] | None]] = {}
    # Fields a create cannot do without; an existing resource may leave them out.
    required_for_create: ClassVar[frozenset[str]] = frozenset()

    # Made with a token scoped to the resource's `project` (Nova and Cinder create in the
    # token's project; Keystone makes an application credential for the token's project):
    # the role assignments the manifest gives on that project must exist first.
    made_in_token_project: ClassVar[bool] = False

    @classmethod
    def implicit_dependencies(cls, manifest: Manifest) -> Iterator[tuple[Address, Address, str]]:
        """(dependency, dependent, why) for what no reference spells out (see graph.py)."""
        if not cls.made_in_token_project:
            return
        grants_on: dict[Address, list[Resource]] = {}
        for grant in manifest.of_kind("role_assignments"):
            target = grant.spec.get("project")
            if isinstance(target, Ref) and not grant.absent:
                grants_on.setdefault(target.address, []).append(grant)
        for resource in manifest.of_kind(cls.kind):
            project = resource.spec.get("project")
            if isinstance(project, Ref) and not resource.absent:
                for grant in grants_on.get(project.address, []):
                    why = f"project (a token for {project.address})"
                    yield grant.address, resource.address, why

    @classmethod
    def check(cls, checker: Checker) -> None:
        """Semantic checks no schema can express, on one resource's accepted fields."""

    @classmethod
    def missing_for_create(cls, resource: Resource) -> list[str]:
        """The required_for_create fields a resource lacks (a plan creating it must fail)."""
        return sorted(f for f in cls.required_for_create if resource.spec.get(f) is None)

    @classmethod
    def admin_fields_in(cls, spec: dict[str, Any], fields: set[str] | None = None) -> list[str]:
        """The admin-only fields a spec sets (only those among `fields`, when given)."""
        found = []
        for path, values in cls.admin_fields.items():
            if fields is not None and path.split(".")[0] not in fields:
                continue
            value: Any = spec
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value is not None and (values is None or value in values):
                found.append(path)
        return found

    # --- declarations used by the planner --------------------------------------------
    updatable: ClassVar[frozenset[str]] = frozenset()
    immutable: ClassVar[frozenset[str]] = frozenset()
    # Fields never compared (write-only, or only used on create).
    write_only: ClassVar[frozenset[str]] = frozenset()
    # How the tool marks what it created (for --prune): "extra" (a keystone attribute),
    # "tags", "description", or None when the kind has no place for a marker.
    ownership: ClassVar[str | None] = None
    # The observed field holding the id of the project a live resource lives in (deleting
    # the project plans its deletion first), or None for kinds that live in no project.
    project_field: ClassVar[str | None] = None
    # Set-valued fields changed by adding and removing items (a SetDelta in the patch),
    # and map-valued fields changed key by key (a MapDelta).
    set_fields: ClassVar[frozenset[str]] = frozenset()
    map_fields: ClassVar[frozenset[str]] = frozenset()
    # Fields the create call cannot set: a create is followed by an update step for them.
    set_after_create: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if register and "kind" in cls.__dict__:
            if not isinstance(getattr(cls, "position", None), int):
                raise TypeError(f"driver for kind {cls.kind!r} declares no position")
            if cls.kind in _REGISTRY and _REGISTRY[cls.kind] is not cls:
                raise TypeError(f"two drivers for kind {cls.kind!r}")
            _REGISTRY[cls.kind] = cls

    @classmethod
    def natural_key(cls, spec: dict[str, Any]) -> tuple[str, ...]:
        """The key tuple of a spec whose references are already resolved to Refs."""
        parts: list[str] = []
        for f in cls.key_fields:
            value = spec.get(f)
            if isinstance(value, Ref):
                if value.address.kind == "domains":
                    if value.address.name == DEFAULT_DOMAIN:
                        continue
                    parts.append(value.address.name)
                else:
                    parts.extend(value.address.key)
            elif value is None:
                if f == "domain":
                    continue
                parts.append("")
            else:
                parts.append(str(value))
        return tuple(parts)

    @classmethod
    def address(cls, spec: dict[str, Any]) -> Address:
        return Address(cls.kind, cls.natural_key(spec))

    # --- runtime: pure parts ----------------------------------------------------------
    # A replace of this kind loses data or wiring (set False where a replace is harmless).
    replace_is_destructive: ClassVar[bool] = True
    # Updatable fields whose in-place change destroys data or disrupts the resource (a
    # server's image means a rebuild, its flavor a resize): such an update needs
    # --allow-destroy, like a destructive replace.
    destructive_fields: ClassVar[frozenset[str]] = frozenset()
    # Replace by creating the new resource first, then deleting the old one once what
    # depends on it uses the new one (a resource's `lifecycle.create_before_destroy`
    # overrides this default).
    create_before_destroy: ClassVar[bool] = False
    # Why the kind cannot be replaced create-before-destroy (its names are unique: the
    # new one cannot exist next to the old one); "" when it can.
    create_before_destroy_impossible: ClassVar[str] = ""

    def identity(self, resource: Resource, resolver: Resolver) -> dict[str, Any] | None:
        """Observed field values that single out this resource; None if a part is unknown.

        The default covers name plus the domain or project of the natural key.
        """
        ident: dict[str, Any] = {"name": resource.spec["name"]}
        for scope in ("domain", "project"):
            if scope in self.key_fields:
                ref = resource.spec.get(scope)
                if ref is None and scope == "domain":
                    ref = Ref(Address("domains", (DEFAULT_DOMAIN,)))
                if ref is None:
                    continue
                live = resolver.live(ref.address)
                if live is None:
                    return None
                ident[f"{scope}_id"] = live
        return ident

    def match(
        self, resource: Resource, observed: list[Observed], resolver: Resolver
    ) -> Observed | None:
        ident = self.identity(resource, resolver)
        if ident is None:
            return None
        found = where(observed, ident)
        if len(found) > 1:
            ids = ", ".join(o.id for o in found)
            raise AmbiguousResource(
                f"{len(found)} live {self.kind} match this natural key ({ids}); "
                "the tool will not guess which one the manifest means",
                address=str(resource.address),
            )
        return found[0] if found else None

    def adoptable(self, observed: Observed) -> bool:
        """May a create that failed midway adopt this match? (No for half-made leftovers
        the driver's own create cleans up, e.g. an image without data.)"""
        return True

    def claimable(self, observed: Observed) -> bool:
        """May `--adopt` mark this unmarked live resource as the stack's (prunable)?"""
        return True

    def compared_fields(self, resource: Resource) -> list[str]:
        """Manifest fields the diff compares: those given, minus write-only ones."""
        managed = self.updatable | self.immutable
        return [
            f
            for f in resource.spec
            if f in managed and f not in self.write_only and not self.is_write_only(resource, f)
        ]

    def is_write_only(self, resource: Resource, field_name: str) -> bool:
        """Per-resource write-only fields (e.g. a password unless drift checks are asked for)."""
        return False

    def desired(self, resource: Resource, resolver: Resolver) -> dict[str, Any]:
        """The managed fields of the spec, references as live ids, normalised."""
        return {
            f: self.normalise(f, resolve(resource.spec[f], resolver))
            for f in self.compared_fields(resource)
        }

    def normalise(self, field_name: str, value: Any) -> Any:
        """Bring a desired value to the observed representation (override per kind)."""
        return value

    def equal(self, field_name: str, desired: Any, observed: Any) -> bool:
        if contains_pending(desired):
            return False
        return desired == observed

    def diff(
        self,
        resource: Resource,
        observed: Observed | None,
        resolver: Resolver,
        facts: Facts | None = None,
    ) -> Change:
        """The one decision function: what changes, and the steps apply will run."""
        if resource.absent:
            if observed is None:
                return Change(
                    resource.address, Action.NOOP, reason="absent as asked", resource=resource
                )
            return Change(
                resource.address,
                Action.DELETE,
                reason="state: absent",
                resource=resource,
                observed=observed,
                destructive=True,
                steps=[Step("delete", {"id": observed.id})],
            )
        desired = self.desired(resource, resolver)
        # lifecycle.ignore_changes: sent on create, never compared.
        ignored = resource.lifecycle.ignore_changes
        if observed is None:
            fields = [
                FieldDiff(f, None, display(resource.spec[f]), f in self.secret_fields)
                for f in resource.spec
                if f not in ("state",)
            ]
            return Change(
                resource.address,
                Action.CREATE,
                fields,
                reason="does not exist",
                resource=resource,
                steps=self.plan_create(resource, desired, resolver),
            )
        observed = self.comparable(resource, observed, desired, facts or {})
        diffs: list[FieldDiff] = []
        for f, want in desired.items():
            if f in ignored:
                continue
            have = observed.fields.get(f)
            # A field naming a resource this plan replaces changes with it, even when it is
            # compared by name (a server's flavor, keypair, networks): the new one is
            # another resource.
            if not self.equal(f, want, have) or self.replaced_refs(resource, f, resolver):
                diffs.append(
                    FieldDiff(
                        f,
                        display(have, resolver),
                        # Normalised like the live value, so a reviewer sees the real
                        # difference; what is not created yet shows by its address.
                        # A replaced dependency's new id: "(known after apply: ...)".
                        want
                        if is_pending(want)
                        else display(resource.spec[f])
                        if contains_pending(want)
                        else display(want, resolver),
                        sensitive=f in self.secret_fields,
                    )
                )
        if not diffs:
            return Change(resource.address, Action.NOOP, resource=resource, observed=observed)
        # A dependency that is replaced changes the ids this resource refers to.
        causes = sorted(
            {str(a) for d in diffs for a in pending_in(desired[d.field]) if resolver.live(a)}
            | {str(a) for d in diffs for a in self.replaced_refs(resource, d.field, resolver)}
        )
        because = f" (because {', '.join(causes)} is replaced)" if causes else ""
        immutable = [d.field for d in diffs if d.field in self.immutable]
        if immutable:
            return Change(
                resource.address,
                Action.REPLACE,
                diffs,
                reason=self.replace_reason(immutable) + because,
                resource=resource,
                observed=observed,
                destructive=self.replace_is_destructive,
                steps=self.replace_steps(resource, observed, desired, resolver),
            )
        disruptive = [d.field for d in diffs if d.field in self.destructive_fields]
        changed = [d.field for d in diffs]
        return Change(
            resource.address,
            Action.UPDATE,
            diffs,
            reason=(self.update_reason(disruptive) if disruptive else "fields differ") + because,
            resource=resource,
            observed=observed,
            destructive=bool(disruptive),
            steps=[Step("update", self.update_patch(resource, observed, desired, changed))],
        )

    @staticmethod
    def replaced_refs(resource: Resource, field_name: str, resolver: Resolver) -> list[Address]:
        """Resources this field refers to that the plan replaces (a cascade's cause)."""
        return [
            ref.address
            for ref in iter_refs(resource.spec.get(field_name))
            if resolver.replacing(ref.address)
        ]

    def comparable(
        self, resource: Resource, observed: Observed, desired: dict[str, Any], facts: Facts
    ) -> Observed:
        """The observation as the diff compares it: probes' results folded in (override)."""
        return observed

    def probes(self, resource: Resource, candidates: list[Observed]) -> list[Probe]:
        """Checks that need the manifest (a local file's hash, a password): the engine runs
        them after reading and hands the results to `diff` as facts."""
        return []

    # --- plan time: the arguments of the steps (pure) ----------------------------------
    def creates_before_destroy(self, resource: Resource) -> bool:
        """Does a replace of `resource` create the new one before deleting the old one?"""
        if self.create_before_destroy_impossible:
            return False
        chosen = resource.lifecycle.create_before_destroy
        return self.create_before_destroy if chosen is None else chosen

    def replace_steps(
        self,
        resource: Resource,
        observed: Observed,
        desired: dict[str, Any],
        resolver: Resolver,
    ) -> list[Step]:
        """Delete then create; or, create-before-destroy, create then delete the old one
        (apply runs the delete after what depends on the resource has switched over)."""
        old = Step("delete", {"id": observed.id})
        create = self.plan_create(resource, desired, resolver)
        if self.creates_before_destroy(resource):
            old.note = "the old one, after its dependents use the new one"
            return [*create, old]
        return [old, *create]

    def plan_create(
        self, resource: Resource, desired: dict[str, Any], resolver: Resolver
    ) -> list[Step]:
        """A create step, then an update for what the create call cannot set."""
        args = self.create_args(resource, desired, resolver)
        later = [f for f in desired if f in self.set_after_create]
        steps = [Step("create", args)]
        if later:
            patch = self.update_patch(resource, None, desired, later)
            if any(v for v in patch.values()):
                steps.append(Step("update", patch, note="completes the create"))
        return steps

    def create_args(
        self, resource: Resource, desired: dict[str, Any], resolver: Resolver
    ) -> dict[str, Any]:
        """What the create call sends: name, the scope ids of the key, the managed fields."""
        args: dict[str, Any] = {"name": resource.spec["name"]}
        for scope in ("domain", "project"):
            if scope in self.key_fields:
                ref = resource.spec.get(scope)
                if ref is None and scope == "domain":
                    ref = Ref(Address("domains", (DEFAULT_DOMAIN,)))
                if ref is not None:
                    args[f"{scope}_id"] = resolver.id(ref.address)
        args.update(
            {f: v for f, v in desired.items() if f not in self.set_after_create}
        )
        return args

    def update_patch(
        self,
        resource: Resource,
        observed: Observed | None,
        desired: dict[str, Any],
        fields: list[str],
    ) -> dict[str, Any]:
        """The patch of an update: new values, or deltas for set and map fields."""
        have = observed.fields if observed is not None else {}
        patch: dict[str, Any] = {}
        for f in fields:
            if f in self.set_fields:
                patch[f] = set_delta(have.get(f), desired[f])
            elif f in self.map_fields:
                patch[f] = map_delta(have.get(f), desired[f])
            else:
                patch[f] = desired[f]
        return patch

    def update_reason(self, fields: list[str]) -> str:
        return f"changing {', '.join(fields)} disrupts the {self.kind[:-1]} in place"

    def replace_reason(self, fields: list[str]) -> str:
        names = ", ".join(fields)
        return f"{names} cannot change in place for {self.kind}"

    # --- plan time: the stack in the ownership marker (pure) --------------------------
    def mark_create(self, steps: list[Step], stack: str) -> None:
        """Write `stack` into the marker the planned create leaves (in place).

        Every kind with an `ownership` marker overrides this and `mark_patch`.
        """

    def mark_patch(self, observed: Observed, stack: str) -> dict[str, Any]:
        """The update patch that marks a live resource as `stack`'s."""
        raise NotImplementedError(f"{self.kind}: no ownership marker")

    def project_of(self, observed: Observed) -> str | None:
        """The id of the project a live resource lives in (see `project_field`)."""
        if self.project_field is None:
            return None
        value = observed.fields.get(self.project_field)
        return str(value) if value else None

    def address_of_observed(self, observed: Observed) -> Address:
        """An address for a live resource the manifest does not list (pruning)."""
        return Address(self.kind, (str(observed.fields.get("name") or observed.id),))

    # --- export (bootstrap export, see bootstrap/export.py): pure --------------------
    # Observed fields a live resource exports -> the server-side default left out
    # (export.ALWAYS: always written). None: the kind is not exported.
    export_fields: ClassVar[dict[str, Any] | None] = None
    # Observed field -> kind: in an export's scope when it names a resource in scope.
    export_scope: ClassVar[dict[str, str]] = {"project_id": "projects", "domain_id": "domains"}
    # Observed fields a `managed: false` lookup of the kind must carry besides its key.
    export_lookup_fields: ClassVar[tuple[str, ...]] = ()

    def export(self, observed: Observed, names: Any) -> dict[str, Any] | None:
        """The manifest entry of a live resource, references as `export.Link`s."""
        from bootstrap import export

        return export.entry(self, observed, names)

    def export_reads(self, selected: list[Observed], names: Any) -> list[Resource]:
        """Stand-in resources that make `read_all` read what an export of `selected`
        needs beyond the lists (a group's members); [] when the lists are enough."""
        return []

    # --- reading: what a read builds on (pure) -----------------------------------------
    # Kinds whose lists this kind's read builds on (a quota is read per project id, a
    # server's group is told by the groups' members): the engine reads those kinds first
    # and hands their lists to `read_all` as `known`, so that no list is requested twice.
    reads_after: ClassVar[frozenset[str]] = frozenset()

    def reads_needed(self, resources: list[Resource]) -> frozenset[str]:
        """The kinds of `reads_after` that reading these resources needs."""
        return self.reads_after

    # --- runtime: I/O (each kind implements these) ------------------------------------
    def read_all(
        self, cloud: Cloud, resources: list[Resource], known: Known | None = None
    ) -> list[Observed]:
        """Every live resource of this kind, with as few list calls as the API allows.

        `resources` are the manifest's resources of this kind, for the few reads that
        cannot be one list (group members, password checks). `known`: the lists of the
        kinds `reads_needed(resources)` names, read before this one (see `reads_after`).
        """
        raise NotImplementedError(f"{self.kind}: read_all")

    def create(self, cloud: Cloud, args: dict[str, Any], ctx: ApplyContext) -> Observed:
        """Run a planned create; `args` are the plan's, ids filled in."""
        raise NotImplementedError(f"{self.kind}: create")

    def adopted(
        self, cloud: Cloud, observed: Observed, args: dict[str, Any], ctx: ApplyContext
    ) -> Observed:
        """Finish what `create(args)` would have done after its call, for a resource a lost
        create answer left behind and apply found again (e.g. wait for a server)."""
        return observed

    def update(
        self, cloud: Cloud, observed: Observed, patch: dict[str, Any], ctx: ApplyContext
    ) -> None:
        """Run a planned patch (values, SetDelta or MapDelta per field) in place."""
        raise NotImplementedError(f"{self.kind}: update")

    def delete(self, cloud: Cloud, observed: Observed, ctx: ApplyContext) -> None:
        raise NotImplementedError(f"{self.kind}: delete")


def resolve(value: Any, resolver: Resolver) -> Any:
    """Refs -> live ids (or Pending), secrets kept as Secret, structure kept."""
    if isinstance(value, Ref):
        return resolver.id(value.address)
    if isinstance(value, dict):
        return {k: resolve(v, resolver) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, resolver) for v in value]
    return value


def display(value: Any, resolver: Resolver | None = None) -> Any:
    """A reviewer-friendly form: Refs and known ids as addresses, secrets masked."""
    if isinstance(value, Ref):
        return str(value.address)
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, Address):
        return str(value)
    if resolver is not None and isinstance(value, str):
        address = resolver.address_of(value)
        if address is not None:
            return str(address)
    if isinstance(value, dict):
        return {k: display(v, resolver) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [display(v, resolver) for v in value]
    return value
