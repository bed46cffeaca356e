"""The connection to one cloud: ONE keystoneauth1 session shared by every client.

Credentials come the way every OpenStack tool takes them (clouds.yaml + secure.yaml with
`--cloud`/`OS_CLOUD`, or `OS_*` variables) through openstacksdk's config loader.
The session counts the HTTP requests it sends, so a plan can say what reading cost.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from functools import cached_property
from typing import Any

from bootstrap.errors import CloudError, ConfigError

# The one retry policy lives in retry.py; these names are imported from here too.
from bootstrap.retry import (  # noqa: F401
    RETRYABLE_STATUS,
    Budget,
    RetryPolicy,
    _message_of,
    classify,
    status_of,
    with_retries,
)

log = logging.getLogger(__name__)

# The compute microversion the drivers are written against; lower servers are refused.
NOVA_MICROVERSION = "2.90"


class RequestCounter:
    """Counts every HTTP request sent: each attempt, answered or not (a request whose
    connection broke counts too), retries and token requests included. It counts where
    requests hands the request to the connection pool (`wrap`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_method: Counter[str] = Counter()

    def count(self, request: Any) -> None:
        # Token requests are POSTs but change nothing: count them apart from writes.
        method = (
            "AUTH" if request.path_url.split("?")[0].endswith("/auth/tokens") else (request.method)
        )
        with self._lock:
            self.by_method[method] += 1

    def wrap(self, http_session: Any) -> None:
        """Count at every transport adapter of a requests.Session (http and https)."""
        for adapter in http_session.adapters.values():
            if getattr(adapter, "_counted_by", None) is self:
                continue
            adapter.send = self._counting(adapter.send)
            adapter._counted_by = self

    def _counting(self, send: Callable[..., Any]) -> Callable[..., Any]:
        def counted(request: Any, *args: Any, **kwargs: Any) -> Any:
            self.count(request)
            return send(request, *args, **kwargs)

        return counted

    def hook(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """The response hook: counts nothing (`wrap` does); observers wrap it to see
        each answer (the integration tests record the writes this way)."""

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


# Connections kept open per host: an apply runs up to 32 changes at once (the adaptive
# limit's maximum) plus the server poller; requests keeps 10, and each one over that
# was closed after use with a "Connection pool is full" warning on the console.
CONNECTIONS_PER_HOST = 64


def keep_connections(http_session: Any, per_host: int) -> None:
    """Size every transport adapter's pool of a requests.Session to `per_host`."""
    for adapter in set(http_session.adapters.values()):
        if getattr(adapter, "_pool_maxsize", per_host) < per_host:
            adapter._pool_maxsize = per_host
            adapter.init_poolmanager(adapter._pool_connections, per_host, adapter._pool_block)


def _no_auth(request: Any) -> Any:
    """requests' own authentication: none (keystoneauth's token is the authentication)."""
    return request


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
        # keystoneauth puts the token on every request. Without an auth of its own, requests
        # looks for ~/.netrc credentials (file lookups) on each request: a fifth of the
        # client's work per write in an apply.
        self.session.session.auth = _no_auth
        keep_connections(self.session.session, CONNECTIONS_PER_HOST)
        self.counter = counter or RequestCounter()
        self.session.session.hooks.setdefault("response", []).append(self.counter.hook)
        self.counter.wrap(self.session.session)
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
        from keystoneauth1 import exceptions as ks_exc

        openstack = _sdk_config_only()

        config = None
        try:
            config = openstack.config.OpenStackConfig(config_files=config_files, load_envvars=True)
            region = config.get_one(cloud=cloud)
        except (ks_exc.MissingRequiredOptions, openstack.exceptions.ConfigException) as exc:
            raise ConfigError(config_problem(exc, cloud, config)) from None
        except KeyError as exc:  # pragma: no cover - depends on loader internals
            raise ConfigError(f"cannot load cloud credentials: missing {exc}") from None
        return cls(region, retry=retry)

    def authenticate(self) -> None:
        """Get the token now, so bad credentials or an unreachable cloud are ONE clear error
        (who, where, what the cloud said) before anything is read."""
        from keystoneauth1 import exceptions as ks_exc

        try:
            self.access  # noqa: B018 - cached: the reads that follow reuse this token
        except ks_exc.ConnectionError as exc:
            raise ConfigError(
                f"cannot reach the identity service at {self.auth_url}{self._named()}: "
                f"{_connection_reason(exc)}. Is the cloud up and its auth_url right? "
                f"{SELECT_HINT}"
            ) from None
        except ks_exc.HttpError as exc:
            status = getattr(exc, "http_status", None)
            if isinstance(status, int) and status >= 500:
                raise ConfigError(
                    f"the identity service at {self.auth_url}{self._named()} failed to "
                    f"issue a token: HTTP {status} ({_message_of(exc)}). {SELECT_HINT}"
                ) from None
            raise ConfigError(
                f"authentication failed for {describe_auth(self.region.config.get('auth') or {})}"
                f" at {self.auth_url}{self._named()}: the identity service answered "
                f"HTTP {status} ({_message_of(exc).split(' (HTTP')[0]}). Check the password "
                f"and names in clouds.yaml / secure.yaml / OS_* variables. {SELECT_HINT}"
            ) from None
        except ks_exc.ClientException as exc:
            raise ConfigError(
                f"cannot authenticate at {self.auth_url}{self._named()}: {_message_of(exc)}. "
                f"{SELECT_HINT}"
            ) from None

    def _named(self) -> str:
        name = getattr(self.region, "name", None)
        return f" (cloud {name!r})" if name and name != "envvars" else " (OS_* variables)"

    # ---- clients, all on the one session -------------------------------------------
    def prepare(self, clients: list[str]) -> None:
        """Build these clients now (`identity`, `keystone`, `nova`, `glance`, `sdk`): once, before
        threads share them; a client library is imported only when named here or used."""
        for name in clients:
            # Building one may ask the service for its versions (Nova's microversion
            # range): a request like any other, so under the one retry policy.
            with_retries(lambda name=name: getattr(self, name), address=name, policy=self.retry)

    def _client_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"interface": self.interface}
        if self.region_name:
            kw["region_name"] = self.region_name
        return kw

    @cached_property
    def identity(self) -> Any:
        """Keystone's v3 API on the session, for reads as JSON (drivers/_keystone.list_all):
        the endpoint, interface and region keystoneclient would use, without its import."""
        from keystoneauth1 import adapter

        return adapter.Adapter(
            self.session, service_type="identity", version=(3, 0), **self._client_kwargs()
        )

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
        _complete_sdk()
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

    @property
    def block_storage(self) -> Any:
        return self.sdk.block_storage

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


# What openstack/__init__.py defines or imports, beyond its config loader.
SDK_INIT_NAMES = frozenset({"connect", "enable_logging", "connection"})


def import_libraries() -> None:
    """Import what `Cloud.connect` and the reads on the session need (keystoneauth,
    requests, openstacksdk's config loader), for a caller that connects in a thread while
    its main thread works: imported there, each module's file reads would hand the
    interpreter back to the main thread and wait to get it again, 4 to 5 times as long."""
    from keystoneauth1 import adapter, exceptions, session  # noqa: F401

    _sdk_config_only()


def _sdk_config_only() -> Any:
    """The openstack package with only its config loader imported.

    `import openstack.config` runs openstack/__init__.py, which imports every service
    proxy of the SDK (~450 modules, most of a no-op plan's import time) although only the
    network kinds use them. The package is entered without its __init__ here, and
    `_complete_sdk` runs that __init__ when a network kind first needs the SDK.
    """
    import importlib.util
    import sys
    import types

    if "openstack" not in sys.modules:
        spec = importlib.util.find_spec("openstack")
        if spec is not None and spec.submodule_search_locations is not None:
            package = types.ModuleType("openstack")
            package.__spec__ = spec
            package.__path__ = list(spec.submodule_search_locations)
            package.__file__ = spec.origin
            package.__package__ = "openstack"
            package.__bootstrap_partial__ = True  # type: ignore[attr-defined]

            def complete_on_access(name: str) -> Any:
                # Anyone else's `import openstack; openstack.connect(...)` gets it whole;
                # other names are submodules, which `from openstack import x` imports.
                if name in SDK_INIT_NAMES:
                    _complete_sdk()
                    return package.__dict__[name]
                raise AttributeError(f"module 'openstack' has no attribute {name!r}")

            package.__getattr__ = complete_on_access  # type: ignore[attr-defined]
            sys.modules["openstack"] = package
    import openstack.config
    import openstack.exceptions  # noqa: F401 - Cloud.connect catches its ConfigException

    return sys.modules["openstack"]


def _complete_sdk() -> None:
    """Run openstack/__init__.py in the package `_sdk_config_only` entered."""
    import sys

    package = sys.modules.get("openstack")
    if package is not None and package.__dict__.pop("__bootstrap_partial__", False):
        package.__dict__.pop("__getattr__", None)
        package.__spec__.loader.exec_module(package)


SELECT_HINT = "To use another cloud: --cloud NAME or OS_CLOUD=NAME."
CLOUDS_YAML_PLACES = (
    "./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml, "
    "or the file OS_CLIENT_CONFIG_FILE names"
)


def config_problem(exc: BaseException, cloud: str | None, config: Any) -> str:
    """What is wrong with the cloud selection, and how to select one."""
    names: list[str] = []
    loaded = None
    if config is not None:
        try:
            names = sorted(config.get_cloud_names())
        except Exception:  # noqa: BLE001 - only for the hint
            names = []
        loaded = getattr(config, "config_filename", None)
    known = (
        f"clouds in {loaded}: {', '.join(names)}" if names and loaded else "no clouds.yaml found"
    )
    text = str(exc)
    if cloud is None and "auth_url" in text:
        return (
            "no cloud selected: pass --cloud NAME or set OS_CLOUD=NAME to use a cloud of "
            f"clouds.yaml ({CLOUDS_YAML_PLACES}), or set OS_AUTH_URL and the other OS_* "
            f"variables; {known}"
        )
    if cloud is not None and "not found" in text.lower():
        return f"cloud {cloud!r} is not in clouds.yaml; {known}. {SELECT_HINT}"
    return f"cannot load cloud credentials: {text}; {known}"


def describe_auth(auth: dict[str, Any]) -> str:
    """Who the credentials say they are: user, domain, scope (never a secret)."""

    def named(kind: str, prefix: str) -> str | None:
        name, ident = auth.get(f"{prefix}_name"), auth.get(f"{prefix}_id")
        if name is None and ident is None:
            return None
        return f"{kind} {name!r}" if name is not None else f"{kind} id {ident}"

    def in_domain(prefix: str) -> str:
        dom = named("domain", f"{prefix}_domain")
        return f" (in {dom})" if dom else ""

    if auth.get("application_credential_id") or auth.get("application_credential_name"):
        who = named("application credential", "application_credential")
        user = _user(auth, named)
        return f"{who} of {user}" if user else str(who)
    user = _user(auth, named)
    who = f"{user}{in_domain('user')}" if user else "the token given"
    if auth.get("project_name") or auth.get("project_id"):
        scope = f"{named('project', 'project')}{in_domain('project')}"
    elif auth.get("domain_name") or auth.get("domain_id"):
        scope = named("domain", "domain") or ""
    elif auth.get("system_scope"):
        scope = f"system scope {auth['system_scope']}"
    else:
        scope = "no project (unscoped)"
    return f"{who}, {scope}"


def _user(auth: dict[str, Any], named: Callable[[str, str], str | None]) -> str | None:
    if auth.get("username"):
        return f"user {auth['username']!r}"
    return named("user", "user")


def _connection_reason(exc: BaseException) -> str:
    import re

    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if found:
        return found.group(1).strip().lower()
    if "timed out" in text.lower():
        return "timed out"
    return _message_of(exc)
