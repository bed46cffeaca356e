"""Security group rules as values: one spelling for manifest and live rules (pure).

Neutron treats many spellings alike (a protocol name or its number, "any" or none, a
bare address or its /32, 1-65535 or no range); the driver compares rules only after
bringing both sides here.
"""

from __future__ import annotations

import json
from typing import Any

from bootstrap.drivers._neutron import cidr, drop_none, text
from bootstrap.plan import Observed

DEFAULT_GROUP = "default"  # Neutron makes one per project on first use; never a second

# IANA numbers of the protocol names Neutron accepts (neutron_lib IP_PROTOCOL_MAP).
PROTOCOL_NUMBERS: dict[str, int] = {
    "ah": 51,
    "dccp": 33,
    "egp": 8,
    "esp": 50,
    "gre": 47,
    "hopopt": 0,
    "icmp": 1,
    "igmp": 2,
    "ip": 0,
    "ipip": 4,
    "ipv6-encap": 41,
    "ipv6-frag": 44,
    "ipv6-icmp": 58,
    "icmpv6": 58,
    "ipv6-nonxt": 59,
    "ipv6-opts": 60,
    "ipv6-route": 43,
    "ospf": 89,
    "pgm": 113,
    "rsvp": 46,
    "sctp": 132,
    "tcp": 6,
    "udp": 17,
    "udplite": 136,
    "vrrp": 112,
}
# One name per number; 0 ("ip"/"hopopt") and legacy "icmpv6" have no canonical name.
PROTOCOL_NAMES: dict[int, str] = {
    n: name for name, n in PROTOCOL_NUMBERS.items() if n != 0 and name != "icmpv6"
}
ANY_PREFIXES = ("0.0.0.0/0", "::/0")
# Neutron's own template when the default-security-group-rules API cannot be read.
CLASSIC_TEMPLATE: list[dict[str, Any]] = [
    {"direction": "egress", "ethertype": "IPv4", "default": True, "other": True},
    {"direction": "egress", "ethertype": "IPv6", "default": True, "other": True},
    {"direction": "ingress", "ethertype": "IPv4", "remote_group": "PARENT", "default": True},
    {"direction": "ingress", "ethertype": "IPv6", "remote_group": "PARENT", "default": True},
]
RULE_FIELDS = (
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group",
    "remote_address_group",
)


# --- rule normalisation (pure) ----------------------------------------------------------


def protocol(value: Any, ethertype: str) -> str | None:
    """Canonical protocol: None for any, else the name ("tcp") or the number as text.

    Neutron treats "any"/None alike, a name like its number ("6" is "tcp"), and for IPv6
    turns "icmp", "icmpv6" and 1 into "ipv6-icmp" (58).
    """
    if value is None or (isinstance(value, str) and value.lower() == "any"):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        number: int | None = int(value)
    else:
        number = PROTOCOL_NUMBERS.get(str(value).lower())
        if number is None:
            return str(value).lower()  # unknown name: Neutron will refuse it, show as written
    if ethertype == "IPv6" and number == 1:
        number = 58
    return PROTOCOL_NAMES.get(number, str(number))


def port(value: Any) -> int | None:
    return None if value is None else int(value)


def normalise_rule(rule: dict[str, Any], observed: bool = False) -> dict[str, Any]:
    """A rule as a dict of its set fields, in one spelling for manifest and live rules.

    `port` is shorthand for min = max; 1-65535 is "all ports" (Neutron stores it as no
    range); 0.0.0.0/0 and ::/0 are "anywhere", as no prefix is (Neutron's duplicate check
    and every backend treat them alike). A description is compared only when given.
    """
    ethertype = str(rule.get("ethertype") or "IPv4")
    ethertype = "IPv6" if ethertype.lower() == "ipv6" else "IPv4"
    lo, hi = port(rule.get("port_range_min")), port(rule.get("port_range_max"))
    if rule.get("port") is not None:
        lo = hi = port(rule["port"])
    if (lo, hi) == (1, 65535):
        lo = hi = None
    prefix = cidr(rule.get("remote_ip_prefix"))
    if prefix in ANY_PREFIXES:
        prefix = None
    out = drop_none(
        {
            "direction": rule.get("direction") or "ingress",
            "ethertype": ethertype,
            "protocol": protocol(rule.get("protocol"), ethertype),
            "port_range_min": lo,
            "port_range_max": hi,
            "remote_ip_prefix": prefix,
            "remote_group": rule.get("remote_group") or rule.get("remote_group_id"),
            "remote_address_group": rule.get("remote_address_group")
            or rule.get("remote_address_group_id"),
        }
    )
    if observed or "description" in rule:
        out["description"] = text(rule.get("description"))
    return out


def rule_key(rule: dict[str, Any]) -> str:
    """What singles out a rule in its group (Neutron refuses two with the same key)."""
    return json.dumps({k: rule[k] for k in RULE_FIELDS if k in rule}, sort_keys=True, default=str)


def sort_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rules, key=lambda r: (rule_key(r), r.get("description", "")))


def normalise_rules(rules: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Manifest rules: normalised, duplicates (same key) dropped, order-free."""
    seen: dict[str, dict[str, Any]] = {}
    for r in rules or []:
        n = normalise_rule(r)
        seen.setdefault(rule_key(n), n)
    return sort_rules(list(seen.values()))


def automatic_rules(
    template: list[dict[str, Any]], group_id: str, is_default: bool
) -> list[dict[str, Any]]:
    """The rules Neutron adds to this group by itself ("PARENT" is the group)."""
    out = []
    for t in template:
        if not t.get("default" if is_default else "other"):
            continue
        rule = dict(t)
        if rule.get("remote_group") == "PARENT":
            rule["remote_group"] = group_id
        out.append(normalise_rule(rule))
    return sort_rules(out)


def effective_rules(observed: Observed, want: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The live rules the manifest's rule list is compared with.

    Automatic rules count only when the manifest lists them; a live rule's description
    counts only when the manifest gives one for that rule.
    """
    fields = observed.fields
    auto = fields.get("automatic_rules")
    if auto is None:
        auto = automatic_rules(CLASSIC_TEMPLATE, observed.id, fields.get("name") == DEFAULT_GROUP)
    auto_keys = {rule_key(a) for a in auto}
    wanted = {rule_key(w): w for w in want}
    out = []
    for r in fields.get("rules") or []:
        k = rule_key(r)
        if k in auto_keys and k not in wanted:
            continue
        if k in wanted and "description" not in wanted[k]:
            r = {f: v for f, v in r.items() if f != "description"}
        out.append(r)
    return sort_rules(out)


def template_from_api(items: list[Any]) -> list[dict[str, Any]]:
    out = []
    for t in items:
        get = t.get if isinstance(t, dict) else lambda k, t=t: getattr(t, k, None)
        out.append(
            {
                "direction": get("direction"),
                "ethertype": get("ethertype") or get("ether_type"),
                "protocol": get("protocol"),
                "port_range_min": get("port_range_min"),
                "port_range_max": get("port_range_max"),
                "remote_ip_prefix": get("remote_ip_prefix"),
                "remote_group": get("remote_group_id"),
                "remote_address_group": get("remote_address_group_id"),
                "default": bool(get("used_in_default_sg")),
                "other": bool(get("used_in_non_default_sg")),
            }
        )
    return out
