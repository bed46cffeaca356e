"""Shared pieces of the Neutron (network v2) drivers: ownership tag, plan steps, normalisers.

Every Neutron kind here follows one plan shape: a create step with openstacksdk's create
arguments, then an update step that adds the ownership tag (Neutron takes tags only
after creation) and whatever else the create call cannot set (a router's interfaces, a
group's rules). Because the tag is a planned step of its own, a create whose answer was
lost and that apply finds again by its re-read still gets its tag from the next step.
"""

from __future__ import annotations

import ipaddress
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from bootstrap.drivers.base import Driver
from bootstrap.model import Address, Manifest, Ref, Resource
from bootstrap.plan import MapDelta, Observed, SetDelta, Step

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker

# Neutron has no free-form attributes, but every standard-attribute resource (networks,
# subnets, routers, security groups, floating IPs) takes tags: the --prune marker.
MARKER_TAG = "managed-by:openstack-bootstrap"
# The stack whose manifest declares it: a second tag, "stack:NAME" (Neutron refuses "/"
# in tags, ","-separated lists filter them; stack names have neither).
STACK_TAG_PREFIX = "stack:"
# The patch key of the tag changes (a SetDelta of tags).
TAGS = "tags"


def is_managed(raw: Any) -> bool:
    return MARKER_TAG in (getattr(raw, "tags", None) or [])


def stack_tag(stack: str) -> str:
    return STACK_TAG_PREFIX + stack


def stack_in(tags: Any) -> str | None:
    """The stack named by a marked resource's tags (None: unmarked or marked before stacks)."""
    tags = list(tags or [])
    if MARKER_TAG not in tags:
        return None
    return next((t[len(STACK_TAG_PREFIX) :] for t in tags if t.startswith(STACK_TAG_PREFIX)), None)


def stack_of(raw: Any) -> str | None:
    return stack_in(getattr(raw, "tags", None))


def marker_tags(observed: Observed, stack: str) -> SetDelta:
    """The tag changes that mark a live resource as `stack`'s (Neutron and Nova alike)."""
    add = () if observed.managed else (MARKER_TAG,)
    old = (stack_tag(observed.stack),) if observed.stack and observed.stack != stack else ()
    return SetDelta(add=(*add, stack_tag(stack)), remove=old)


def mark_tag_step(steps: list[Step], stack: str) -> None:
    """Add the stack tag to the update step that tags a planned create."""
    for step in steps:
        if step.verb == "update" and tagged(step.args):
            delta = step.args[TAGS]
            step.args[TAGS] = SetDelta(add=(*delta.add, stack_tag(stack)), remove=delta.remove)


def text(value: Any) -> str:
    """Neutron returns "" for an empty description; a manifest may say null."""
    return "" if value is None else str(value)


def ip(value: Any) -> Any:
    """One spelling per address (IPv6 compressed, lower case); non-addresses pass."""
    if not isinstance(value, str):
        return value
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def cidr(value: Any) -> Any:
    """One spelling per network; a bare address is its /32 (/128), as Neutron stores it.

    Host bits are dropped: 10.0.0.5/24 filters and routes like 10.0.0.0/24.
    """
    if not isinstance(value, str):
        return value
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        return value


def project_scoped_address(kind: str, observed: Observed) -> Address:
    """A live resource the manifest does not name: project id plus its name (or id)."""
    f = observed.fields
    return Address(kind, (str(f.get("project_id") or "-"), str(f.get("name") or observed.id)))


def ignore_not_found(fn: Any, *args: Any, **kwargs: Any) -> None:
    """Call a removal whose target may already be gone (that is the goal reached)."""
    from bootstrap.cloud import classify
    from bootstrap.errors import NotFound

    try:
        fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - anything but "not found" propagates
        if not isinstance(classify(exc), NotFound):
            raise


def already_done(exc: BaseException, phrase: str) -> bool:
    """Is this refusal Neutron saying an earlier attempt (its answer lost) did it?"""
    from bootstrap.cloud import classify

    err = classify(exc)
    return err.status in (400, 409) and phrase in err.message.lower()


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def is_empty(value: Any) -> bool:
    """An update value that changes nothing (an empty delta)."""
    if isinstance(value, SetDelta):
        return not value.add and not value.remove
    if isinstance(value, MapDelta):
        return not value.set and not value.unset
    return False


def tagged(patch: dict[str, Any]) -> bool:
    """Does this patch add the tool's marker, i.e. complete a create by the tool?"""
    tags = patch.get(TAGS)
    return isinstance(tags, SetDelta) and MARKER_TAG in tags.add


def change_tags(cloud: Any, sdk_class: Any, resource_id: str, delta: SetDelta) -> None:
    """Add and remove tags, one idempotent PUT / DELETE each."""
    obj = sdk_class.new(id=resource_id)
    for tag in delta.add:
        cloud.network.add_tag(obj, tag)
    for tag in delta.remove:
        ignore_not_found(cloud.network.remove_tag, obj, tag)


def completing(what: str, resource_id: str, patch: dict[str, Any], fn: Any) -> None:
    """Run the writes of an update; if it completes a create, its error says so.

    Apply retries it under the one policy (transient errors, 409s); when it still fails,
    "X was created, but completing it failed" tells the reader that the resource exists
    without its tag, rules or interfaces (the next plan shows what is missing).
    """
    from bootstrap.cloud import classify

    try:
        fn()
    except Exception as exc:
        if not tagged(patch):
            raise
        err = classify(exc)
        message = f"{what} {resource_id} was created, but completing it failed: {err.message}"
        # The same class, status and retryability: apply's one policy decides on retries.
        raise type(err)(
            message, err.address, err.status, err.retryable, err.request_id, dict(err.extra)
        ) from exc


class NeutronDriver(Driver):
    """What networks, subnets, routers and security groups share (registers no kind)."""

    key_fields = ("project", "name")
    clients = ("sdk",)
    reads_alone = True  # one list of the whole collection (subclasses that look say so)
    ownership = "tags"
    project_field = "project_id"
    # Manifest field -> openstacksdk attribute, for create arguments and update patches.
    sdk_attrs: ClassVar[dict[str, str]] = {}

    def address_of_observed(self, observed):
        return project_scoped_address(self.kind, observed)

    def mark_create(self, steps, stack):
        mark_tag_step(steps, stack)

    def mark_patch(self, observed, stack):
        return {TAGS: marker_tags(observed, stack)}

    # -- plan time (pure) --------------------------------------------------------------
    def create_args(self, resource, desired, resolver):
        """openstacksdk create arguments: name, owning project, the given fields renamed."""
        args: dict[str, Any] = {
            "name": resource.spec["name"],
            "project_id": resolver.id(resource.spec["project"].address),
        }
        for f, v in desired.items():
            if f not in self.set_after_create:
                args[self.sdk_attrs.get(f, f)] = v
        return args

    def update_patch(self, resource, observed, desired, fields):
        """Plain fields renamed to openstacksdk attributes; deltas keep the field's name."""
        patch = super().update_patch(resource, observed, desired, fields)
        return {
            (k if k in self.set_fields or k in self.map_fields else self.sdk_attrs.get(k, k)): v
            for k, v in patch.items()
        }

    def plan_create(self, resource, desired, resolver):
        """Create, then one update: the ownership tag first, then what create cannot set."""
        completion = {TAGS: SetDelta(add=(MARKER_TAG,))}
        completion.update(self.completion(resource, desired, resolver))
        patch = {k: v for k, v in completion.items() if not is_empty(v)}
        more = [k for k in patch if k != TAGS]
        return [
            Step("create", self.create_args(resource, desired, resolver)),
            Step(
                "update",
                patch,
                note="completes the create: ownership tag" + "".join(f", {k}" for k in more),
            ),
        ]

    def completion(self, resource, desired, resolver) -> dict[str, Any]:
        """The patch for the fields the create call cannot set (`set_after_create`)."""
        later = [f for f in desired if f in self.set_after_create]
        return self.update_patch(resource, None, desired, later) if later else {}

    # -- I/O ---------------------------------------------------------------------------
    # The openstacksdk resource: "network" -> update_network, delete_network, Network.
    noun: ClassVar[str]

    def sdk_class(self) -> Any:
        raise NotImplementedError

    def update(self, cloud, observed, patch, ctx):
        """The tag changes, the one PUT of the plain attributes, then the set deltas."""
        attrs = {k: v for k, v in patch.items() if k != TAGS and k not in self.set_fields}
        deltas = {k: v for k, v in patch.items() if k in self.set_fields}

        def run() -> None:
            if TAGS in patch:
                change_tags(cloud, self.sdk_class(), observed.id, patch[TAGS])
            if attrs:
                getattr(cloud.network, f"update_{self.noun}")(observed.id, **attrs)
            for field_name, delta in deltas.items():
                self.change_set(cloud, observed, field_name, delta)

        completing(self.noun.replace("_", " "), observed.id, patch, run)

    def change_set(self, cloud, observed, field_name: str, delta: SetDelta) -> None:
        """Add and remove the items of one set-valued field (kinds with `set_fields`)."""
        raise NotImplementedError(f"{self.kind}: {field_name}")

    def read_all(self, cloud, resources, known=None):
        return [self.observe(x) for x in list_all(cloud, self.sdk_class())]

    def create(self, cloud, args, ctx):
        return self.observe(getattr(cloud.network, f"create_{self.noun}")(**args))

    def delete(self, cloud, observed, ctx):
        getattr(cloud.network, f"delete_{self.noun}")(observed.id, ignore_missing=False)


def subnets_by_network(manifest: Manifest) -> dict[Address, list[Resource]]:
    """The manifest's subnets by the address of their network."""
    out: dict[Address, list[Resource]] = {}
    for s in manifest.of_kind("subnets"):
        net = s.spec.get("network")
        if isinstance(net, Ref):
            out.setdefault(net.address, []).append(s)
    return out


def check_external_network(c: Checker, path: tuple) -> None:
    """A gateway or floating IP needs a network not declared internal."""
    net = c.target(c.get(path))
    if net is not None and net.spec.get("external") is False:
        c.error(path, f"{net.address} is declared with external: false")


class Record:
    """One object of a Neutron list as its JSON gave it, read like the openstacksdk
    resource (`is_admin_state_up` for `admin_state_up`, the same defaults, aliases and
    type conversions: each attribute is the SDK's own descriptor) without building one."""

    def __init__(self, body: dict[str, Any], attributes: dict[str, Any]):
        self._body = body  # the name the SDK's Body descriptors read their values from
        self._attributes = attributes

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            descriptor = self._attributes[name]
        except KeyError:
            raise AttributeError(name) from None
        return descriptor.__get__(self, None)


@cache
def _body_attributes(sdk_class: type) -> dict[str, Any]:
    """The SDK class's body attributes by name; a subclass's own win (as in the SDK)."""
    from openstack import fields

    out: dict[str, Any] = {}
    for name, descriptor in sdk_class._attributes_iterator(fields.Body):
        out.setdefault(name, descriptor)
    return out


def list_all(cloud: Any, sdk_class: type, **query: Any) -> list[Record]:
    """Every object of a Neutron collection, read as JSON (following next links when the
    cloud pages). openstacksdk builds each resource attribute by attribute, about 2 ms
    each: 4 s of the interpreter for 1,000 networks and 1,000 subnets, which every other
    read of a plan waited for while Neutron itself needed the same 2 cores."""
    from openstack import exceptions

    attributes = _body_attributes(sdk_class)
    key = sdk_class.resources_key
    url: str | None = sdk_class.base_path
    out: list[Record] = []
    while url:
        response = cloud.network.get(url, params=query or None)
        if response.status_code >= 400:
            exceptions.raise_from_response(response)
        body = response.json()
        out.extend(Record(item, attributes) for item in body[key])
        url = next(
            (link["href"] for link in body.get(f"{key}_links") or [] if link.get("rel") == "next"),
            None,
        )
        query = {}  # a next link carries the query
    return out
