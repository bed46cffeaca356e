"""Checks a schema cannot express (CIDRs and pools, port ranges, public keys ...)."""

from __future__ import annotations

import ipaddress
import os
import re
from typing import TYPE_CHECKING, Any

from bootstrap.manifest.specs import Item, get_at
from bootstrap.model import Ref

if TYPE_CHECKING:
    from bootstrap.manifest.loader import Loader

PORTED = {"tcp", "udp", "sctp", "dccp", "udplite", 6, 17, 33, 132, 136}
ICMP = {"icmp", "icmpv6", "ipv6-icmp", 1, 58}
SSH_KEY = re.compile(
    r"^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|"
    r"sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}( .*)?$"
)


class Semantics:
    """Checks a schema cannot express; each runs only on fields the schema accepted."""

    def __init__(self, loader: Loader):
        self.loader = loader

    def error(self, it: Item, path: tuple, text: str, at_key: bool = False) -> None:
        self.loader.error(text, it.src(path, at_key), it)

    def ok(self, it: Item, path: tuple) -> bool:
        return get_at(it.spec, path) is not None and not it.is_bad(path)

    def target(self, value: Any) -> Item | None:
        return self.loader.refs.by_address.get(value.address) if isinstance(value, Ref) else None

    def check_subnets(self, it: Item) -> None:
        s = it.spec
        if not self.ok(it, ("cidr",)):
            return
        net = ipaddress.ip_network(s["cidr"])
        if self.ok(it, ("ip_version",)) and s["ip_version"] != net.version:
            self.error(
                it,
                ("ip_version",),
                f"ip_version {s['ip_version']} does not match cidr {net} (IPv{net.version})",
            )
        gateway = None
        if "gateway_ip" in s and self.ok(it, ("gateway_ip",)):
            gateway = ipaddress.ip_address(s["gateway_ip"])
            if gateway not in net:
                self.error(it, ("gateway_ip",), f"gateway_ip {gateway} is outside cidr {net}")
            elif (
                net.version == 4
                and net.prefixlen < 31
                and gateway
                in (
                    net.network_address,
                    net.broadcast_address,
                )
            ):
                self.error(
                    it, ("gateway_ip",), f"gateway_ip {gateway} is not a host address of {net}"
                )
        elif "gateway_ip" not in s and net.num_addresses > 2:
            gateway = net.network_address + 1  # Neutron's default gateway
        pools: list[tuple[Any, Any, int]] = []
        for i, pool in enumerate(s.get("allocation_pools") or []):
            if not (
                self.ok(it, ("allocation_pools", i, "start"))
                and self.ok(it, ("allocation_pools", i, "end"))
            ):
                continue
            start, end = ipaddress.ip_address(pool["start"]), ipaddress.ip_address(pool["end"])
            where = ("allocation_pools", i)
            if start not in net or end not in net:
                self.error(it, where, f"allocation pool {start}-{end} is outside cidr {net}")
                continue
            if start > end:
                self.error(it, where, f"allocation pool starts after it ends ({start} > {end})")
                continue
            if gateway is not None and start <= gateway <= end:
                if "gateway_ip" in s:
                    text = f"allocation pool {start}-{end} contains gateway_ip {gateway}"
                else:
                    text = (
                        f"allocation pool {start}-{end} contains {gateway}, Neutron's default "
                        "gateway when gateway_ip is not set; set gateway_ip or move the pool"
                    )
                self.error(it, where, text)
            for ostart, oend, j in pools:
                if start <= oend and ostart <= end:
                    self.error(it, where, f"allocation pool {start}-{end} overlaps pool {j + 1}")
            pools.append((start, end, i))
        for i, route in enumerate(s.get("host_routes") or []):
            p = ("host_routes", i)
            if self.ok(it, p + ("destination",)) and self.ok(it, p + ("nexthop",)):
                dest = ipaddress.ip_network(route["destination"])
                hop = ipaddress.ip_address(route["nexthop"])
                if dest.version != hop.version:
                    self.error(it, p, f"host route to {dest} has an IPv{hop.version} nexthop")

    def check_security_groups(self, it: Item) -> None:
        for i, rule in enumerate(it.spec.get("rules") or []):
            if isinstance(rule, dict) and not it.is_bad(("rules", i)):
                self.check_rule(it, i, rule)

    def check_rule(self, it: Item, i: int, rule: dict) -> None:
        path = ("rules", i)
        proto = rule.get("protocol")
        proto = proto.lower() if isinstance(proto, str) else proto
        lo, hi = rule.get("port_range_min"), rule.get("port_range_max")
        lo_path = path + ("port_range_min",) if lo is not None else path + ("port_range_max",)
        if lo is not None or hi is not None:
            if proto in (None, "any"):
                self.error(
                    it, lo_path, "ports need a protocol (tcp, udp, sctp, ...); this rule allows any"
                )
            elif proto in PORTED:
                if lo is None or hi is None:
                    self.error(it, lo_path, "give both port_range_min and port_range_max (or port)")
                elif lo < 1 or hi < 1:
                    self.error(it, lo_path, "port 0 is not valid; ports are 1-65535")
                elif lo > hi:
                    self.error(
                        it, lo_path, f"port_range_min {lo} is greater than port_range_max {hi}"
                    )
            elif proto in ICMP:
                if lo is None:
                    self.error(
                        it, lo_path, "an ICMP code (port_range_max) needs a type (port_range_min)"
                    )
                elif lo > 255 or (hi is not None and hi > 255):
                    self.error(it, lo_path, "ICMP type and code are 0-255")
            else:
                self.error(it, lo_path, f"protocol {proto} has no ports")
        ethertype = rule.get("ethertype", "IPv4")
        if self.ok(it, path + ("remote_ip_prefix",)):
            net = ipaddress.ip_network(rule["remote_ip_prefix"])
            if f"IPv{net.version}" != ethertype:
                self.error(
                    it,
                    path + ("remote_ip_prefix",),
                    f"remote_ip_prefix {net} is IPv{net.version} but ethertype is {ethertype}",
                )
        if ethertype == "IPv4" and proto in ("icmpv6", "ipv6-icmp", 58):
            self.error(it, path + ("protocol",), f"protocol {proto} needs ethertype IPv6")

    def check_projects(self, it: Item) -> None:
        parent = self.target(it.spec.get("parent"))
        if parent is None:
            return
        mine = self.loader.refs.scope_value(it.spec.get("domain"), "domain")
        theirs = self.loader.refs.scope_value(parent.spec.get("domain"), "domain")
        if mine is not None and theirs is not None and mine != theirs:
            self.error(
                it,
                ("parent",),
                f"parent {parent.address} is in domain '{theirs.name}', not '{mine.name}'; "
                "Keystone needs a parent in the same domain",
            )

    def external_network(self, it: Item, path: tuple) -> None:
        net = self.target(get_at(it.spec, path))
        if net is not None and net.spec.get("external") is False:
            self.error(it, path, f"{net.address} is declared with external: false")

    def check_routers(self, it: Item) -> None:
        self.external_network(it, ("external_gateway", "network"))

    def check_floating_ips(self, it: Item) -> None:
        self.external_network(it, ("network",))

    def check_role_assignments(self, it: Item) -> None:
        if it.spec.get("inherited") and it.spec.get("system"):
            self.error(
                it, ("inherited",), "inherited grants apply to projects and domains, not the system"
            )

    def check_users(self, it: Item) -> None:
        if it.spec.get("update_password") == "always" and "password" not in it.node:
            self.loader.warn(
                "update_password: always without a password has no effect",
                it.src(("update_password",)),
                it,
            )

    def check_flavors(self, it: Item) -> None:
        if it.spec.get("access") and it.spec.get("is_public") is not False:
            self.error(
                it, ("access",), "access lists are for private flavors: set is_public: false"
            )

    def check_images(self, it: Item) -> None:
        url = get_at(it.spec, ("source", "url"))
        if isinstance(url, str) and url.startswith("http:") and "checksum" not in it.spec:
            self.loader.warn(
                "image downloaded over plain http without a checksum; use https or add checksum",
                it.src(("source", "url")),
                it,
            )

    def check_keypairs(self, it: Item) -> None:
        if it.state != "present":
            return
        kind = it.spec.get("type", "ssh")
        if self.ok(it, ("public_key",)):
            self.check_key_text(it, ("public_key",), it.spec["public_key"], kind)
        elif self.ok(it, ("public_key_file",)):
            path = it.spec["public_key_file"]
            if os.path.isfile(path) and os.access(path, os.R_OK):
                try:
                    with open(path, encoding="utf-8") as fh:
                        text = fh.read(64 * 1024)
                except (OSError, UnicodeDecodeError):
                    self.error(it, ("public_key_file",), "the public key file is not UTF-8 text")
                    return
                self.check_key_text(it, ("public_key_file",), text, kind)

    def check_key_text(self, it: Item, path: tuple, text: str, kind: str) -> None:
        text = text.strip()
        if "PRIVATE KEY" in text:
            self.error(it, path, "this is a PRIVATE key: give the public key (the .pub file)")
        elif kind == "x509" and not text.startswith("-----BEGIN CERTIFICATE-----"):
            self.error(it, path, "an x509 keypair needs a PEM certificate")
        elif kind == "ssh" and not SSH_KEY.match(text):
            self.error(it, path, "does not look like an OpenSSH public key ('ssh-ed25519 AAAA...')")
