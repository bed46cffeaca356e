"""Shared pieces of the Nova drivers: project scoping and the server status poller.

The poller belongs to one apply (`ApplyContext.poller`), never to a global or to the
connection: every server waiting for a status during that apply is checked by ONE list
call per interval (per listing scope: all projects for an admin, else each project),
whatever the number of servers. A failed list call is retried under the one retry
policy by the thread making it; only when that gives up does every waiter of the poll
get the error.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bootstrap.errors import Forbidden, ResourceFailed, WaitTimeout
from bootstrap.model import Secret

if TYPE_CHECKING:
    from bootstrap.cloud import Cloud

# Server tag marking what the tool created (--prune); tags are invisible to `metadata`.
MARKER_TAG = "managed-by:openstack-bootstrap"  # the same tag as on Neutron resources
# Its stack: a second tag "stack:NAME" (as on Neutron; Nova tags: 60 characters, no "/" or
# ",", which the stack name pattern leaves room for).
# How far back `changes-since` reaches: covers clock skew between this host and Nova.
SINCE_MARGIN = datetime.timedelta(minutes=10)


def is_admin(cloud: Cloud) -> bool:
    return "admin" in cloud.roles


def project_cloud(cloud: Cloud, project_id: str, address: str | None = None) -> Cloud:
    """A Cloud whose token is scoped to `project_id` (Nova boots in the token's project)."""
    if project_id == cloud.project_id:
        return cloud
    from keystoneauth1 import exceptions as ks_exc

    scoped = cloud.for_project(project_id)
    try:
        scoped.access  # noqa: B018 - fetch the scoped token now, to fail clearly
    except (ks_exc.Unauthorized, ks_exc.Forbidden, ks_exc.NotFound) as exc:
        raise Forbidden(
            f"cannot get a token for user {cloud.user_id} scoped to project {project_id} "
            f"({exc.__class__.__name__}). Nova creates a server in the project of the token, "
            "so this user needs a role on that project: add a role assignment, e.g. "
            "role_assignments: [{user: <this user>, project: <the project>, role: member}]",
            address,
            403,
        ) from None
    return scoped


def fault_message(server: Any) -> str:
    fault = getattr(server, "fault", None) or {}
    text = fault.get("message") if isinstance(fault, dict) else None
    return text or "no fault recorded"


def task_state(server: Any) -> str | None:
    return getattr(server, "OS-EXT-STS:task_state", None)


def action_error(nova: Any, server_id: str, action: str) -> str:
    """The error Nova recorded for the latest `action` (resize failures leave no fault)."""
    for act in nova.instance_action.list(server_id):
        if act.action != action:
            continue
        detail = nova.instance_action.get(server_id, act.request_id)
        for event in getattr(detail, "events", None) or []:
            if event.get("result") == "Error":
                return event.get("details") or event.get("event") or "Error"
        return act.message or "no error recorded"
    return "no error recorded"


# --- the poller ---------------------------------------------------------------------

# A readiness check sees the server as listed (None: not in this poll's list) and says
# done (True), not yet (False), or raises (e.g. ResourceFailed on ERROR).
Ready = Callable[[Any], bool]


@dataclass
class _Waiter:
    server_id: str
    ready: Ready
    since: datetime.datetime
    done: bool = False
    result: Any = None
    error: BaseException | None = None
    last: Any = None


@dataclass
class _Scope:
    lister: Callable[[str], list[Any]]
    waiters: list[_Waiter] = field(default_factory=list)
    polling: bool = False


class ServerPoller:
    """Waits for many servers at once: one list call per interval and scope."""

    def __init__(
        self,
        interval: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        policy: Any = None,
    ):
        from bootstrap.retry import RetryPolicy

        self.policy = policy or RetryPolicy()
        self.interval = interval
        self._sleep = sleep
        self._clock = clock
        self._cond = threading.Condition()
        self._scopes: dict[str, _Scope] = {}
        self.polls = 0  # list calls made (tests and benchmarks read it)

    def wait(
        self,
        scope: str,
        lister: Callable[[str], list[Any]],
        server_id: str,
        ready: Ready,
        timeout: float,
        what: str = "the expected status",
    ) -> Any:
        """Block until `ready` says done for `server_id`; the listed server is returned.

        `lister(changes_since)` lists the servers of `scope` changed since an ISO time.
        """
        now = datetime.datetime.now(datetime.UTC)
        waiter = _Waiter(server_id, ready, now)
        deadline = self._clock() + timeout
        with self._cond:
            group = self._scopes.setdefault(scope, _Scope(lister))
            group.waiters.append(waiter)
        while True:
            with self._cond:
                if waiter.done:
                    break
                if self._clock() >= deadline:
                    group.waiters.remove(waiter)
                    status = getattr(waiter.last, "status", None) or "not seen"
                    raise WaitTimeout(
                        f"server {server_id} did not reach {what} within {timeout:g}s "
                        f"(last status: {status})",
                        retryable=False,
                    )
                lead = not group.polling
                if lead:
                    group.polling = True
                else:
                    self._cond.wait(timeout=self.interval)
                    continue
            try:
                self._sleep(self.interval)
                self._poll(group)
            finally:
                with self._cond:
                    group.polling = False
                    self._cond.notify_all()
        if waiter.error is not None:
            raise waiter.error
        return waiter.result

    def _poll(self, group: _Scope) -> None:
        with self._cond:
            waiting = [w for w in group.waiters if not w.done]
        if not waiting:
            return
        from bootstrap.retry import with_retries

        since = (min(w.since for w in waiting) - SINCE_MARGIN).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            # A transient failure is retried here, not fanned out to every waiter.
            listed = with_retries(
                lambda: group.lister(since), address="server status poll", policy=self.policy
            )
        except Exception as exc:  # noqa: BLE001 - every waiter of this poll gets the error
            with self._cond:
                for w in waiting:
                    w.done, w.error = True, exc
                group.waiters = [w for w in group.waiters if not w.done]
            return
        self.polls += 1
        by_id = {s.id: s for s in listed}
        with self._cond:
            for w in waiting:
                server = by_id.get(w.server_id)
                w.last = server if server is not None else w.last
                try:
                    if w.ready(server):
                        w.done, w.result = True, server
                except Exception as exc:  # noqa: BLE001 - raised in the waiting thread
                    w.done, w.error = True, exc
            group.waiters = [w for w in group.waiters if not w.done]


def listing(cloud: Cloud, project_id: str) -> tuple[str, Callable[[str], list[Any]]]:
    """(scope key, lister) to poll servers of a project: admins list all projects at once."""
    if is_admin(cloud):
        nova = cloud.nova
        return "all", lambda since: nova.servers.list(
            search_opts={"all_tenants": 1, "changes-since": since}
        )
    nova = project_cloud(cloud, project_id).nova
    return project_id, lambda since: nova.servers.list(search_opts={"changes-since": since})


# --- readiness checks ------------------------------------------------------------------


def active(address: str) -> Ready:
    def check(server: Any) -> bool:
        if server is None:
            return False
        if server.status == "ERROR":
            raise ResourceFailed(f"the server went to ERROR: {fault_message(server)}", address)
        if server.status in ("DELETED", "SOFT_DELETED"):
            raise ResourceFailed("the server was deleted while waiting for it", address)
        return server.status == "ACTIVE" and task_state(server) is None

    return check


def gone(server: Any) -> bool:
    # With changes-since Nova lists deleted servers as DELETED; a purged one is absent.
    return server is None or server.status == "DELETED"


# --- how Nova reports a server, in the manifest's shapes (pure) ----------------------


class _Hidden:
    """user_data a non-admin cannot read back: not comparable, never drift."""

    def __repr__(self) -> str:
        return "(not visible to this user)"


HIDDEN = _Hidden()


def fixed_ports(addresses: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One entry per port (MAC address): {network: name, fixed_ips: [...]}, sorted."""
    ports: dict[tuple[str, str], list[str]] = {}
    for net, entries in (addresses or {}).items():
        for i, e in enumerate(entries or []):
            if e.get("OS-EXT-IPS:type", "fixed") != "fixed":
                continue
            mac = e.get("OS-EXT-IPS-MAC:mac_addr") or f"#{i}"
            ports.setdefault((net, mac), []).append(e["addr"])
    return sorted(
        ({"network": net, "fixed_ips": sorted(ips)} for (net, _), ips in ports.items()),
        key=lambda p: (p["network"], p["fixed_ips"]),
    )


def all_addresses(addresses: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every address of the server (fixed and floating), for known_hosts."""
    out = [e["addr"] for entries in (addresses or {}).values() for e in entries or []]
    return list(dict.fromkeys(out))


def networks_equal(desired: list[dict[str, Any]], observed: list[dict[str, Any]]) -> bool:
    """Same networks, as many ports on each, and every fixed_ip asked for present.

    Order is not compared: Nova does not report the order NICs were attached in.
    """
    if Counter(d["network"] for d in desired) != Counter(o["network"] for o in observed):
        return False
    free = list(observed)
    # Items pinning an address first, so a bare item cannot take their port.
    for d in sorted(desired, key=lambda d: "fixed_ip" not in d):
        port = next(
            (
                o
                for o in free
                if o["network"] == d["network"]
                and ("fixed_ip" not in d or d["fixed_ip"] in o["fixed_ips"])
            ),
            None,
        )
        if port is None:
            return False
        free.remove(port)
    return True


def decode_user_data(value: Any) -> Secret | None:
    """Nova returns user data base64-encoded (admins only); compared as a secret."""
    if not value:
        return None
    try:
        text = base64.b64decode(value).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        text = str(value)
    return Secret(text, "live")


def export_server(spec: dict[str, Any], observed: Any, names: Any) -> dict[str, Any]:
    """A server's export entry, completed with what Nova reports by name: the flavor,
    keypair, networks (fixed addresses left out: Neutron chose them) and security
    groups, each a reference to the one of that name (in the server's project). The
    availability zone (the scheduler's) and user data (not readable back) are left out."""
    f = observed.fields
    project = f.get("project_id")
    where = f"servers {f.get('name')}"
    flavor = names.named("flavors", f.get("flavor"))
    if flavor is not None:
        spec["flavor"] = flavor
    if f.get("keypair"):
        keypair = names.named("keypairs", f["keypair"])
        if keypair is None:
            names.warnings.append(f"{where}: keypair {f['keypair']!r} is not one listed; left out")
        else:
            spec["keypair"] = keypair
    networks = [names.named("networks", p["network"], project) for p in f.get("networks") or []]
    if None in networks:
        names.warnings.append(f"{where}: a network is not one listed by name; networks left out")
    elif networks:
        spec["networks"] = [{"network": n} for n in networks]
    groups = [names.named("security_groups", g, project) for g in f.get("security_groups") or []]
    if None in groups:
        names.warnings.append(f"{where}: a security group is not one listed; groups left out")
    elif groups:
        spec["security_groups"] = sorted(groups)
    return spec
