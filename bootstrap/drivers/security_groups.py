"""security_groups: Neutron security groups and their rules.

Reading costs three list calls whatever the size of the cloud: the groups, ONE list of
every rule (joined in memory by security_group_id) and, when a manifest entry manages
`rules`, the template of the rules Neutron adds to new groups by itself.

Rules are values compared whole, keyed by (direction, ethertype, protocol, port range,
remote prefix or remote group); a rule has no update call, so a changed rule is removed
and added again, as part of an in-place update of its group. The rules Neutron creates by
itself (egress to anywhere; on a project's `default` group also ingress from the group
itself) are never drift and never re-created; listed in the manifest, they are adopted.

In a plan, `rules` is a SetDelta: `remove` items are live rules with their ids (read at
plan time), `add` items are the API bodies of the bulk POST (their group's id, and a
remote group's, may be Pending: known once apply has created the group).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from bootstrap.cloud import classify
from bootstrap.drivers._neutron import (
    MARKER_TAG,
    TAGS,
    NeutronDriver,
    already_done,
    drop_none,
    is_empty,
    is_managed,
    list_all,
    stack_of,
    text,
)
from bootstrap.drivers._rules import (  # noqa: F401  (tests import the rule helpers from here)
    ANY_PREFIXES,
    CLASSIC_TEMPLATE,
    DEFAULT_GROUP,
    PROTOCOL_NAMES,
    PROTOCOL_NUMBERS,
    RULE_FIELDS,
    automatic_rules,
    effective_rules,
    normalise_rule,
    normalise_rules,
    port,
    protocol,
    rule_key,
    sort_rules,
    template_from_api,
)
from bootstrap.errors import CloudError, Forbidden, NotFound
from bootstrap.export import stand_in
from bootstrap.plan import Observed, Pending, SetDelta, Step, set_delta

if TYPE_CHECKING:
    from bootstrap.manifest.checks import Checker

# --- the driver ------------------------------------------------------------------------


# Protocols with ports, and those whose "ports" are an ICMP type and code.
PORTED = {"tcp", "udp", "sctp", "dccp", "udplite", 6, 17, 33, 132, 136}
ICMP = {"icmp", "icmpv6", "ipv6-icmp", 1, 58}


class SecurityGroupDriver(NeutronDriver):
    kind = "security_groups"
    reads_alone = False  # its read_all looks at the manifest's resources (rules or not)
    references = {"project": "projects", "rules[].remote_group": "security_groups"}
    field_shorthand = {"rules[].port": ("port_range_min", "port_range_max")}
    item_defaults = {"rules[]": {"direction": "ingress", "ethertype": "IPv4"}}
    updatable = frozenset({"description", "rules", "stateful"})
    immutable = frozenset()
    replace_is_destructive = False
    set_fields = frozenset({"rules"})
    export_fields = {"description": "", "stateful": True}

    def export(self, observed, names):
        """Rules Neutron made by itself are left out (the plan leaves them alone too);
        a project's untouched default group is not written at all."""
        rules = effective_rules(observed, [])
        if observed.fields["name"] == DEFAULT_GROUP and not rules:
            return None
        spec = super().export(observed, names)
        if spec is None:
            return None
        out = []
        for rule in rules:
            r = {k: v for k, v in rule.items() if self.item_defaults["rules[]"].get(k) != v}
            if not r.get("description"):
                r.pop("description", None)
            if "remote_group" in r:
                group = names.link(self.kind, r["remote_group"])
                if group is None:
                    names.warnings.append(
                        f"security_groups {observed.fields['name']}: a rule names a group "
                        "no list returned; rules left out"
                    )
                    return spec
                r["remote_group"] = group
            out.append(r)
        spec["rules"] = out
        return spec

    def export_reads(self, selected, names):
        # The cloud's rule template (what Neutron adds by itself) is read when a
        # manifest gives rules: one stand-in asks for it.
        groups = selected.get(self.kind, [])
        return [stand_in(self.kind, "-", rules=[])] if groups else []
    set_after_create = frozenset({"rules"})
    noun = "security_group"
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

    def comparable(self, resource, observed, desired, facts):
        # Compare the manifest's rules with the live rules it is about (automatic rules
        # and descriptions only where the manifest names them); the rest is generic.
        if "rules" not in desired:
            return observed
        fields = {**observed.fields, "rules": effective_rules(observed, desired["rules"])}
        return dataclasses.replace(observed, fields=fields)

    def update_patch(self, resource, observed, desired, fields):
        patch = {f: desired[f] for f in fields if f != "rules"}
        if "rules" in fields and observed is not None:
            delta = set_delta(observed.fields.get("rules"), desired["rules"])
            raw = observed.raw if isinstance(observed.raw, dict) else {}
            rule_ids = raw.get("rule_ids") or {}
            patch["rules"] = SetDelta(
                add=tuple(
                    _rule_body(r, observed.id, observed.fields.get("project_id")) for r in delta.add
                ),
                remove=_removals(delta.remove, rule_ids),
            )
        return patch

    def plan_create(self, resource, desired, resolver):
        """A new group: create, then tag and add its rules; `default`: adopt, then rules.

        A group that does not exist yet holds, once made, the rules of the cloud's
        template (default-security-group-rules); they are not added again. The template
        is read with the groups (each observed group carries its automatic rules), but a
        group that is not there yet has no observation to carry it, and a driver keeps no
        state between calls: the plan assumes Neutron's classic template (egress anywhere;
        on `default` also ingress from the group itself), which is what a cloud whose
        operator did not customise the template makes. (On a customised cloud, a manifest
        rule that only the custom template makes is planned as an add, which Neutron
        refuses as a duplicate; from the second plan on, the group's observation carries
        the real template.) Getting the real template here would need `diff`'s facts in
        `plan_create`, which the contract does not pass.
        """
        group = Pending(resource.address)  # its id, once the create (adoption) has run
        project_id = resolver.id(resource.spec["project"].address)
        adopt = resource.spec["name"] == DEFAULT_GROUP
        patch: dict[str, Any] = {}
        if not adopt:
            # Adopted, the default group stays untagged: the tool did not create it, and
            # --prune must never delete it.
            patch[TAGS] = SetDelta(add=(MARKER_TAG,))
        if "rules" in desired:
            auto = automatic_rules(CLASSIC_TEMPLATE, group, adopt)  # type: ignore[arg-type]
            auto_keys = {rule_key(a) for a in auto}
            add = [w for w in desired["rules"] if rule_key(w) not in auto_keys]
            patch["rules"] = SetDelta(add=tuple(_rule_body(w, group, project_id) for w in add))
        if adopt:
            # The group exists as soon as Neutron looks at the project's groups: what the
            # manifest says of it is an update of Neutron's group.
            patch.update({f: desired[f] for f in ("description", "stateful") if f in desired})
            create = Step(
                "create",
                {"adopt": True, "name": DEFAULT_GROUP, "project_id": project_id},
                note="adopts the default group Neutron makes for the project (not tagged)",
            )
            note = "completes the adoption"
        else:
            args = {"name": resource.spec["name"], "project_id": project_id}
            args.update({f: desired[f] for f in ("description", "stateful") if f in desired})
            create = Step("create", args)
            note = "completes the create: ownership tag" + (", rules" if "rules" in patch else "")
        patch = {k: v for k, v in patch.items() if not is_empty(v)}
        return [create, Step("update", patch, note=note)] if patch else [create]

    def claimable(self, observed):
        # Neutron made the default group, not the tool: --prune must never reach it.
        return observed.fields.get("name") != DEFAULT_GROUP

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
        return Observed(sg.id, fields, raw, is_managed(sg), stack_of(sg))

    # -- I/O -------------------------------------------------------------------------
    def sdk_class(self):
        from openstack.network.v2.security_group import SecurityGroup

        return SecurityGroup

    def read_all(self, cloud, resources, known=None):
        # The rules as each group embeds them, in the one group list: Neutron's own rule
        # list computes `belongs_to_default_sg` rule by rule (1.8 s for 325 rules, where
        # the groups with the same rules embedded took 0.11 s).
        fields = ["id", "name", "project_id", "description", "stateful", "tags",
                  "security_group_rules"]  # fmt: skip
        groups = list_all(cloud, self.sdk_class(), fields=fields)
        template = None
        if any("rules" in r.spec for r in resources):
            template = read_template(cloud)
        out = []
        for sg in groups:
            auto = None
            if template is not None:
                auto = automatic_rules(template, sg.id, sg.name == DEFAULT_GROUP)
            out.append(self.observe(sg, sg.security_group_rules or [], auto))
        return out

    def create(self, cloud, args, ctx):
        if args.get("adopt"):
            # Neutron refuses to create a group named "default" and makes the project's
            # own on the first look at the project's groups: that one is the result.
            found = list(
                cloud.network.security_groups(project_id=args["project_id"], name=args["name"])
            )
            if not found:
                raise NotFound(f"Neutron made no default security group in {args['project_id']}")
            sg = found[0]
        else:
            sg = cloud.network.create_security_group(**args)
        return self.observe(sg, sg.security_group_rules or [])

    def change_set(self, cloud, observed, field_name, delta):
        # Removals first: a rule whose description changes is removed and added again,
        # and Neutron refuses a second rule with the same key.
        for rule in delta.remove:
            if not rule.get("id"):
                raise CloudError(f"no live id for the rule to remove: {rule_key(rule)}")
            cloud.network.delete_security_group_rule(rule["id"], ignore_missing=True)
        if delta.add:
            # One bulk POST for all new rules (100 rules: one request).
            try:
                list(cloud.network.create_security_group_rules(list(delta.add)))
            except Exception as exc:
                if not already_done(exc, "already exists"):
                    raise
                # A retry after a lost answer: add them one by one, a duplicate is done.
                for rule in delta.add:
                    try:
                        cloud.network.create_security_group_rule(**rule)
                    except Exception as one:
                        if not already_done(one, "already exists"):
                            raise


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


def _rule_body(rule: dict[str, Any], group_id: Any, project_id: Any) -> dict[str, Any]:
    """A rule as the bulk POST takes it (openstacksdk names); ids may be Pending."""
    body = {
        "security_group_id": group_id,
        "direction": rule["direction"],
        "ether_type": rule["ethertype"],
        "protocol": rule.get("protocol"),
        "port_range_min": rule.get("port_range_min"),
        "port_range_max": rule.get("port_range_max"),
        "remote_ip_prefix": rule.get("remote_ip_prefix"),
        "remote_group_id": rule.get("remote_group"),
        "remote_address_group_id": rule.get("remote_address_group"),
        "description": rule.get("description"),
        # A rule belongs to its group's project, not to the admin adding it.
        "project_id": project_id,
    }
    return drop_none(body)


def _removals(
    rules: tuple[dict[str, Any], ...], rule_ids: dict[str, list[str]]
) -> tuple[dict[str, Any], ...]:
    """Live rules to delete, each with its id (every live rule of that key).

    The ids come from the read that made the plan; a rule without one (an observation
    that did not record them) is kept without an id, and its delete fails loudly.
    """
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for r in rules:
        ids = rule_ids.get(rule_key(r))
        if not ids:
            out.append(dict(r))
        for rule_id in ids or []:
            if rule_id not in seen:
                seen.add(rule_id)
                out.append({"id": rule_id, **r})
    return tuple(out)
