"""The connection to one cloud: ONE keystoneauth1 session shared by every client.

Credentials come the way every OpenStack tool takes them (clouds.yaml + secure.yaml with
`--cloud`/`OS_CLOUD`, or `OS_*` variables) through openstacksdk's config loader.
The session counts the HTTP requests it sends, so a plan can say what reading cost.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from functools import cached_property
from typing import Any

from bootstrap.errors import CloudError, ConfigError

# The one retry policy lives in retry.py; these names are imported from here too.
from bootstrap.retry import (  # noqa: F401
    RETRYABLE_STATUS,
    Budget,
    RetryPolicy,
    classify,
    status_of,
    with_retries,
)

log = logging.getLogger(__name__)

# The compute microversion the drivers are written against; lower servers are refused.
NOVA_MICROVERSION = "2.90"


class RequestCounter:
    """Counts real HTTP round trips (requests' response hook: retries and auth included)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_method: Counter[str] = Counter()

    def hook(self, response: Any, *args: Any, **kwargs: Any) -> None:
        request = response.request
        # Token requests are POSTs but change nothing: count them apart from writes.
        method = (
            "AUTH" if request.path_url.split("?")[0].endswith("/auth/tokens") else (request.method)
        )
        with self._lock:
            self.by_method[method] += 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.by_method.values())

    @property
    def writes(self) -> int:
        """Requests that may change the cloud (not GET/HEAD, not token requests)."""
        with self._lock:
            return sum(n for m, n in self.by_method.items() if m not in ("GET", "HEAD", "AUTH"))

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.by_method)


class Cloud:
    def __init__(
        self,
        region: Any,
        session: Any = None,
        counter: RequestCounter | None = None,
        retry: RetryPolicy | None = None,
    ):
        self.region = region
        # How every call to this cloud is retried (`--retry-budget`), given explicitly.
        self.retry = retry or RetryPolicy()
        self.session = session or region.get_session()
        self.counter = counter or RequestCounter()
        self.session.session.hooks.setdefault("response", []).append(self.counter.hook)
        self.region_name = region.get_region_name() or None
        self.interface = region.get_interface() or "public"
        self._lock = threading.Lock()
        self._scoped: dict[str, Cloud] = {}

    @classmethod
    def connect(
        cls,
        cloud: str | None = None,
        config_files: list[str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> Cloud:
        import openstack.config
        from keystoneauth1 import exceptions as ks_exc

        try:
            config = openstack.config.OpenStackConfig(config_files=config_files, load_envvars=True)
            region = config.get_one(cloud=cloud)
        except (ks_exc.MissingRequiredOptions, openstack.exceptions.ConfigException) as exc:
            raise ConfigError(f"cannot load cloud credentials: {exc}") from None
        except KeyError as exc:  # pragma: no cover - depends on loader internals
            raise ConfigError(f"cannot load cloud credentials: missing {exc}") from None
        return cls(region, retry=retry)

    # ---- clients, all on the one session -------------------------------------------
    def _client_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"interface": self.interface}
        if self.region_name:
            kw["region_name"] = self.region_name
        return kw

    @cached_property
    def keystone(self) -> Any:
        from keystoneclient.v3 import client as ks_client

        return ks_client.Client(session=self.session, **self._client_kwargs())

    @cached_property
    def nova(self) -> Any:
        from novaclient import api_versions
        from novaclient import client as nova_client

        # novaclient calls the interface endpoint_type (and warns about `interface`).
        kw = self._client_kwargs()
        kw["endpoint_type"] = kw.pop("interface")
        probe = nova_client.Client("2.1", session=self.session, **kw)
        server_max = api_versions.discover_version(probe, api_versions.APIVersion("2.latest"))
        wanted = api_versions.APIVersion(NOVA_MICROVERSION)
        if server_max < wanted:
            raise CloudError(
                f"the compute API offers microversion {server_max.get_string()} at most; "
                f"this tool needs {NOVA_MICROVERSION}"
            )
        return nova_client.Client(wanted, session=self.session, **kw)

    @cached_property
    def glance(self) -> Any:
        import glanceclient

        return glanceclient.Client("2", session=self.session, **self._client_kwargs())

    @cached_property
    def sdk(self) -> Any:
        import openstack.connection

        if self.session is self.region.get_session():
            return openstack.connection.Connection(config=self.region)
        # A project-scoped twin: same cloud, its own session.
        return openstack.connection.Connection(
            session=self.session, region_name=self.region_name, interface=self.interface
        )

    @property
    def network(self) -> Any:
        return self.sdk.network

    # ---- who am I --------------------------------------------------------------------
    @cached_property
    def access(self) -> Any:
        return self.session.auth.get_access(self.session)

    @property
    def roles(self) -> set[str]:
        return set(self.access.role_names or [])

    @property
    def user_id(self) -> str:
        return self.access.user_id

    @property
    def project_id(self) -> str | None:
        return self.access.project_id

    @property
    def auth_url(self) -> str:
        return self.region.config["auth"]["auth_url"]

    def for_project(self, project_id: str) -> Cloud:
        """The same user with a token scoped to another project (e.g. to boot servers there).

        Nova creates a server in the project of the token, so a server that the manifest
        puts in project X needs a token scoped to X: the user needs a role on X.
        """
        if project_id == self.project_id:
            return self
        with self._lock:
            cached = self._scoped.get(project_id)
            if cached is not None:
                return cached
            from keystoneauth1 import loading
            from keystoneauth1 import session as ks_session

            auth_type = self.region.config.get("auth_type") or "password"
            if auth_type not in ("password", "v3password", "token", "v3token"):
                raise ConfigError(
                    f"cannot act in project {project_id} with auth type {auth_type!r}: "
                    "use password credentials, or credentials scoped to that project"
                )
            options = {
                k: v
                for k, v in self.region.config["auth"].items()
                if not k.startswith("project_")
                and k not in ("domain_id", "domain_name", "system_scope")
            }
            options["project_id"] = project_id
            loader = loading.get_plugin_loader(auth_type)
            plugin = loader.load_from_options(**options)
            session = ks_session.Session(
                auth=plugin, verify=self.session.verify, cert=self.session.cert
            )
            scoped = Cloud(self.region, session=session, counter=self.counter, retry=self.retry)
            self._scoped[project_id] = scoped
            return scoped


