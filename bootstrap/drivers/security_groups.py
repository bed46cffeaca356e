"""security_groups: Neutron security groups and their rules.

Reading costs three list calls whatever the size of the cloud: the groups, ONE list of
every rule (joined in memory by security_group_id) and, when a manifest entry manages
`rules`, the template of the rules Neutron adds to new groups by itself.

Rules are values compared whole, keyed by (direction, ethertype, protocol, port range,
remote prefix or remote group); a rule has no update call, so a changed rule is removed
and added again, as part of an in-place update of its group. The rules Neutron creates by
itself (egress to anywhere; on a project's `default` group also ingress from the group
itself) are never drift and never re-created; listed in the manifest, they are adopted.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from bootstrap.cloud import classify
from bootstrap.drivers._neutron import cidr, drop_none, follow_up, is_managed, mark, text
from bootstrap.drivers._neutron import project_scoped_address as _scoped_address
from bootstrap.drivers.base import Driver, resolve
from bootstrap.errors import CloudError, Forbidden, NotFound
from bootstrap.plan import UNKNOWN, Observed

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker

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


# --- the driver ------------------------------------------------------------------------


# Protocols with ports, and those whose "ports" are an ICMP type and code.
PORTED = {"tcp", "udp", "sctp", "dccp", "udplite", 6, 17, 33, 132, 136}
ICMP = {"icmp", "icmpv6", "ipv6-icmp", 1, 58}


class SecurityGroupDriver(Driver):
    kind = "security_groups"
    key_fields = ("project", "name")
    references = {"project": "projects", "rules[].remote_group": "security_groups"}
    field_shorthand = {"rules[].port": ("port_range_min", "port_range_max")}
    item_defaults = {"rules[]": {"direction": "ingress", "ethertype": "IPv4"}}
    updatable = frozenset({"description", "rules", "stateful"})
    immutable = frozenset()
    ownership = "tags"
    replace_is_destructive = False
    position = 130

    @classmethod
    def check(cls, c: Checker) -> None:
        for i, rule in enumerate(c.spec.get("rules") or []):
            if isinstance(rule, dict) and not c.is_bad(("rules", i)):
                cls._check_rule(c, i, rule)

    @classmethod
    def _check_rule(cls, c: Checker, i: int, rule: dict) -> None:
        path = ("rules", i)
        proto = rule.get("protocol")
        proto = proto.lower() if isinstance(proto, str) else proto
        lo, hi = rule.get("port_range_min"), rule.get("port_range_max")
        lo_path = path + ("port_range_min",) if lo is not None else path + ("port_range_max",)
        if lo is not None or hi is not None:
            if proto in (None, "any"):
                c.error(
                    lo_path, "ports need a protocol (tcp, udp, sctp, ...); this rule allows any"
                )
            elif proto in PORTED:
                if lo is None or hi is None:
                    c.error(lo_path, "give both port_range_min and port_range_max (or port)")
                elif lo < 1 or hi < 1:
                    c.error(lo_path, "port 0 is not valid; ports are 1-65535")
                elif lo > hi:
                    c.error(lo_path, f"port_range_min {lo} is greater than port_range_max {hi}")
            elif proto in ICMP:
                if lo is None:
                    c.error(lo_path, "an ICMP code (port_range_max) needs a type (port_range_min)")
                elif lo > 255 or (hi is not None and hi > 255):
                    c.error(lo_path, "ICMP type and code are 0-255")
            else:
                c.error(lo_path, f"protocol {proto} has no ports")
        ethertype = rule.get("ethertype", "IPv4")
        if c.ok(path + ("remote_ip_prefix",)):
            net = ipaddress.ip_network(rule["remote_ip_prefix"])
            if f"IPv{net.version}" != ethertype:
                c.error(
                    path + ("remote_ip_prefix",),
                    f"remote_ip_prefix {net} is IPv{net.version} but ethertype is {ethertype}",
                )
        if ethertype == "IPv4" and proto in ("icmpv6", "ipv6-icmp", 58):
            c.error(path + ("protocol",), f"protocol {proto} needs ethertype IPv6")

    # -- pure ------------------------------------------------------------------------
    def normalise(self, field_name, value):
        if field_name == "rules":
            return normalise_rules(value)
        if field_name == "description":
            return text(value)
        return value

    def diff(self, resource, observed, resolver):
        # Compare the manifest's rules with the live rules it is about (automatic rules
        # and descriptions only where the manifest names them); the rest is generic.
        if observed is not None and not resource.absent and "rules" in resource.spec:
            want = self.normalise("rules", resolve(resource.spec["rules"], resolver))
            fields = {**observed.fields, "rules": effective_rules(observed, want)}
            observed = dataclasses.replace(observed, fields=fields)
        return super().diff(resource, observed, resolver)

    def address_of_observed(self, observed):
        return _scoped_address(self.kind, observed)

    def observe(self, sg, rules, automatic=None) -> Observed:
        rule_ids: dict[str, list[str]] = defaultdict(list)
        normalised = []
        for r in rules:
            n = normalise_rule(_rule_dict(r), observed=True)
            rule_ids[rule_key(n)].append(_get(r, "id"))
            normalised.append(n)
        fields = {
            "name": sg.name,
            "project_id": sg.project_id,
            "description": text(sg.description),
            "stateful": sg.stateful if sg.stateful is not None else True,
            "rules": sort_rules(normalised),
        }
        if automatic is not None:
            fields["automatic_rules"] = automatic
        raw = {"group": sg, "rule_ids": dict(rule_ids)}
        return Observed(sg.id, fields, raw, is_managed(sg))

    # -- I/O -------------------------------------------------------------------------
    def read_all(self, cloud, resources):
        # Only what a group itself says: its rules come from the one rule list below.
        groups = list(
            cloud.network.security_groups(
                fields=["id", "name", "project_id", "description", "stateful", "tags"]
            )
        )
        by_group: dict[str, list[Any]] = defaultdict(list)
        for r in cloud.network.security_group_rules():
            by_group[r.security_group_id].append(r)
        template = None
        if any("rules" in r.spec for r in resources):
            template = read_template(cloud)
        out = []
        for sg in groups:
            auto = None
            if template is not None:
                auto = automatic_rules(template, sg.id, sg.name == DEFAULT_GROUP)
            out.append(self.observe(sg, by_group.get(sg.id, []), auto))
        return out

    def create(self, cloud, resource, desired, resolver):
        project_id = resolver.id(resource.spec["project"].address)
        name = resource.spec["name"]
        if name == DEFAULT_GROUP:
            # Neutron refuses to create a group named "default" and makes the project's
            # own on the first look at the project's groups: adopt that one (untagged:
            # the tool did not create it, --prune must never delete it).
            found = list(cloud.network.security_groups(project_id=project_id, name=name))
            if not found:
                raise NotFound(f"Neutron made no default security group in {project_id}")
            sg = found[0]
            auto = automatic_rules(read_template(cloud), sg.id, True)
        else:
            attrs = {"name": name, "project_id": project_id}
            for f in ("description", "stateful"):
                if f in desired:
                    attrs[f] = desired[f]
            sg = cloud.network.create_security_group(**attrs)
            mark(cloud, sg)
            # Whatever a brand-new group holds, Neutron put there by itself.
            auto = [normalise_rule(_rule_dict(r)) for r in sg.security_group_rules or []]
        scoped = resolver.copy()
        scoped.set(resource.address, sg.id)  # rules may name their own group
        obs = self.observe(sg, sg.security_group_rules or [], sort_rules(auto))
        change = self.diff(resource, obs, scoped)
        if change.fields:
            want = self.desired(resource, scoped)
            changed = {d.field: want[d.field] for d in change.fields}
            assert change.observed is not None
            how = "adopted" if name == DEFAULT_GROUP else "created"
            done = f"security group {sg.id} was {how}"
            follow_up(done, self.update, cloud, resource, change.observed, changed, scoped)
            obs.fields.update(changed)
        return obs

    def update(self, cloud, resource, observed, changed, resolver):
        attrs = {f: changed[f] for f in ("description", "stateful") if f in changed}
        if attrs:
            cloud.network.update_security_group(observed.id, **attrs)
        if "rules" in changed:
            self._sync_rules(cloud, observed, changed["rules"])

    def _sync_rules(self, cloud, observed, want):
        have = observed.fields.get("rules") or []
        rule_ids = (observed.raw or {}).get("rule_ids", {})
        # Removals first: a rule whose description changes is removed and added again,
        # and Neutron refuses a second rule with the same key.
        for r in have:
            if r not in want:
                for rule_id in rule_ids.get(rule_key(r), []):
                    cloud.network.delete_security_group_rule(rule_id, ignore_missing=True)
        add = [w for w in want if w not in have]
        if add:
            project_id = observed.fields.get("project_id")
            # One bulk POST for all new rules (100 rules: one request).
            list(
                cloud.network.create_security_group_rules(
                    [_rule_body(w, observed.id, project_id) for w in add]
                )
            )

    def delete(self, cloud, observed):
        cloud.network.delete_security_group(observed.id, ignore_missing=False)


def read_template(cloud) -> list[dict[str, Any]]:
    """The rules Neutron puts into new groups; its classic set if the API is missing."""
    try:
        return template_from_api(list(cloud.network.default_security_group_rules()))
    except Exception as exc:  # noqa: BLE001 - only "no such API / not allowed" falls back
        err = classify(exc)
        if isinstance(err, (NotFound, Forbidden)):
            return CLASSIC_TEMPLATE
        raise


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _rule_dict(r: Any) -> dict[str, Any]:
    """A live rule (SDK object or the dict embedded in a group) in manifest field names."""
    return {
        "direction": _get(r, "direction"),
        "ethertype": _get(r, "ethertype") or _get(r, "ether_type"),
        "protocol": _get(r, "protocol"),
        "port_range_min": _get(r, "port_range_min"),
        "port_range_max": _get(r, "port_range_max"),
        "remote_ip_prefix": _get(r, "remote_ip_prefix"),
        "remote_group": _get(r, "remote_group_id"),
        "remote_address_group": _get(r, "remote_address_group_id"),
        "description": _get(r, "description"),
    }


def _rule_body(rule: dict[str, Any], group_id: str, project_id: str | None) -> dict[str, Any]:
    if any(v is UNKNOWN for v in rule.values()):
        raise CloudError(f"rule {rule_key(rule)} names a security group that does not exist")
    body = {
        "security_group_id": group_id,
        "direction": rule["direction"],
        "ether_type": rule["ethertype"],
        "protocol": rule.get("protocol"),
        "port_range_min": rule.get("port_range_min"),
        "port_range_max": rule.get("port_range_max"),
        "remote_ip_prefix": rule.get("remote_ip_prefix"),
        "remote_group_id": rule.get("remote_group"),
        "description": rule.get("description"),
        # A rule belongs to its group's project, not to the admin adding it.
        "project_id": project_id,
    }
    return drop_none(body)
