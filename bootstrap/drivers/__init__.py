"""One module per resource kind; importing this package registers every driver."""

from bootstrap.drivers import (  # noqa: F401
    domains,
    endpoints,
    flavors,
    floating_ips,
    groups,
    images,
    keypairs,
    networks,
    projects,
    regions,
    role_assignments,
    roles,
    routers,
    security_groups,
    servers,
    services,
    subnets,
    users,
)
