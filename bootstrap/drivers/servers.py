"""servers: declarations (natural key, references, updatable fields)."""

from __future__ import annotations

from bootstrap.drivers.base import Driver


class ServerDriver(Driver):
    kind = "servers"
    key_fields = ("project", "name")
    references = {
        "project": "projects",
        "image": "images",
        "flavor": "flavors",
        "keypair": "keypairs",
        "networks[].network": "networks",
        "security_groups[]": "security_groups",
    }
    updatable = frozenset({"metadata", "security_groups"})
    immutable = frozenset({"keypair", "networks", "user_data", "availability_zone", "config_drive"})
    secret_fields = frozenset({"user_data"})
    path_fields = {"known_hosts": "write"}
    item_shorthand = {"networks[]": "network"}
