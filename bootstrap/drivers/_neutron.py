"""Shared pieces of the Neutron (network v2) drivers: ownership tag, value normalisers."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from bootstrap.model import Address, Manifest, Ref, Resource
from bootstrap.plan import Observed

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker

# Neutron has no free-form attributes, but every standard-attribute resource (networks,
# subnets, routers, security groups, floating IPs) takes tags: the --prune marker.
MARKER_TAG = "managed-by:openstack-bootstrap"


def is_managed(raw: Any) -> bool:
    return MARKER_TAG in (getattr(raw, "tags", None) or [])


def mark(cloud: Any, obj: Any) -> None:
    """Tag what the tool created. Neutron takes tags only after creation (one PUT)."""
    done = f"{type(obj).__name__} {getattr(obj, 'id', '')} was created"
    follow_up(done, cloud.network.add_tag, obj, MARKER_TAG)
    tags = list(getattr(obj, "tags", None) or [])
    if MARKER_TAG not in tags:
        obj.tags = [*tags, MARKER_TAG]


def follow_up(done: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A step after a create (tag, rules, interfaces), whose failure must surface as is.

    Raised plainly, a 409 (a quota) or a transient error would read as "someone else
    created it" or "the create's answer was lost": the engine would find the new resource,
    adopt it and report it created, its rules or interfaces missing without a word.
    """
    from bootstrap.cloud import classify
    from bootstrap.errors import ResourceFailed

    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - re-raised with its message, never retried
        err = classify(exc)
        code = f" (HTTP {err.status})" if err.status else ""
        raise ResourceFailed(
            f"{done}, but completing it failed: {err.message}{code}",
            request_id=err.request_id,
        ) from exc


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


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def create_attrs(
    resource: Any, desired: dict[str, Any], resolver: Any, sdk_attrs: dict[str, str]
) -> dict[str, Any]:
    """openstacksdk create arguments: name, owning project, and the given fields renamed."""
    attrs = {
        "name": resource.spec["name"],
        "project_id": resolver.id(resource.spec["project"].address),
    }
    for f, attr in sdk_attrs.items():
        if f in desired:
            attrs[attr] = desired[f]
    return attrs


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
