"""Natural keys and references: every resource's address, then every reference resolved
by name, qualified when needed, preferring the referrer's own scope."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from bootstrap import schema as schema_mod
from bootstrap.drivers.base import Driver
from bootstrap.manifest.specs import Item, Site, set_at, short_list, singular
from bootstrap.model import DEFAULT_DOMAIN, Address, Ref

Report = Callable[..., None]


class References:
    """Addresses of the manifest's items and the references between them."""

    def __init__(self, drivers: dict[str, type[Driver]], error: Report):
        self.drivers = drivers
        self.error = error
        self.by_address: dict[Address, Item] = {}
        self.by_name: dict[str, dict[str, list[Item]]] = defaultdict(lambda: defaultdict(list))
        # Names whose own declaration is broken (reported there, not at every reference).
        self.broken: dict[str, set[str]] = defaultdict(set)

    def key_order(self) -> list[str]:
        """The kinds in the drivers' order, each after the kinds its key refers to (a
        floating IP's key names its server). A priority-ordered topological sort of ~25
        kinds, written out: networkx is imported only once the graph is built, while the
        cloud is read (its import is a fifth of a no-op plan's time)."""
        order = list(self.drivers)
        needs = {
            kind: {
                t
                for f in drv.key_fields
                if (t := drv.references.get(f)) and t != kind and t in self.drivers
            }
            for kind, drv in self.drivers.items()
        }
        placed: list[str] = []
        while len(placed) < len(order):
            kind = next(k for k in order if k not in placed and needs[k] <= set(placed))
            placed.append(kind)
        return placed

    def name_of(self, it: Item) -> str | None:
        value = it.spec.get(self.drivers[it.kind].key_fields[-1])
        return value if isinstance(value, str) else None

    def key(self, it: Item) -> None:
        drv = self.drivers[it.kind]
        ok = True
        for f in drv.key_fields:
            if f not in drv.references:
                value = it.spec.get(f)
                if it.is_bad((f,)) or not (value is None or isinstance(value, (str, int))):
                    ok = False
                continue
            site = next((s for s in it.sites if s.path == (f,)), None)
            if site is None:
                continue
            if site.bad:
                ok = False
                continue
            site.ref = self.resolve(it, site)
            if site.ref is None:
                ok = False
            else:
                it.spec[f] = site.ref
        address = None
        if ok:
            try:
                address = drv.address(it.spec)
            except (KeyError, TypeError, AttributeError, StopIteration) as exc:
                # Only a schema-reported spec may fail here (reported already); on a spec
                # the schema accepted it is a bug in the natural key, never to be hidden.
                if not it.bad:
                    self.error(
                        f"internal error: cannot compute the natural key of this "
                        f"{singular(it.kind)} ({type(exc).__name__}: {exc}); please report it",
                        it.node.start,
                        it,
                    )
        name = self.name_of(it)
        if address is None:
            if name:
                self.broken[it.kind].add(name)
            return
        if it.kind == "domains" and address.name.lower() == DEFAULT_DOMAIN.lower():
            self.error(
                f"the {DEFAULT_DOMAIN} domain is built in and always exists; do not declare it "
                "(references to it need no declaration)",
                it.node.start,
            )
            return
        it.address = address
        first = self.by_address.get(address)
        if first is not None:
            it.duplicate = True
            self.error(
                f"duplicate {address}: already declared at {first.node.start}",
                it.node.start,
                str(address),
            )
            return
        self.by_address[address] = it
        self.by_name[it.kind][address.name].append(it)

    def resolve(self, it: Item, site: Site) -> Ref | None:
        target = site.target
        tdrv = self.drivers[target]
        name_field = tdrv.key_fields[-1]
        raw = site.value
        if isinstance(raw, str):
            name, quals = raw, {}
        elif isinstance(raw, dict) and isinstance(raw.get(name_field), str):
            name = raw[name_field]
            quals = {k: v for k, v in raw.items() if k != name_field and isinstance(v, str)}
        else:
            return None
        src = it.src(site.path)
        if target == "domains" and name.lower() == DEFAULT_DOMAIN.lower():
            return Ref(Address("domains", (DEFAULT_DOMAIN,)))
        what = singular(target)
        candidates = self.by_name[target].get(name, [])
        if not candidates:
            if name in self.broken[target]:
                return None  # its own declaration is broken and was reported there
            known = sorted(self.by_name[target]) + ([DEFAULT_DOMAIN] if target == "domains" else [])
            text = f"unknown {what} '{name}' referenced by {it.label}"
            if known:
                text += f"; known: {short_list(known)}"
                text += schema_mod.did_you_mean(name, known).replace(";", " —", 1)
            else:
                text += (
                    f"; no {target.replace('_', ' ')} are declared (every referenced resource "
                    "must be declared"
                    " in the manifest; an existing one needs only its name)"
                )
            self.error(text, src, it)
            return None
        matching = [c for c in candidates if all(self.qualifies(c, q, v) for q, v in quals.items())]
        if not matching:
            wanted = ", ".join(f"{q} '{v}'" for q, v in quals.items())
            declared = ", ".join(str(c.address) for c in candidates)
            self.error(
                f"no {what} '{name}' with {wanted} (referenced by {it.label}); "
                f"declared: {declared}",
                src,
                it,
            )
            return None
        if len(matching) > 1:
            scoped = [c for c in matching if self.same_scope(it, c, tdrv)]
            if len(scoped) != 1:
                self.error(self.ambiguous(it, name, matching, tdrv), src, it)
                return None
            matching = scoped
        return Ref(matching[0].address)

    def ambiguous(self, it: Item, name: str, matching: list[Item], tdrv: type[Driver]) -> str:
        name_field = tdrv.key_fields[-1]
        addrs = ", ".join(str(c.address) for c in matching)
        text = f"ambiguous reference to {singular(tdrv.kind)} '{name}' from {it.label}: {addrs}"
        quals = [q for q in tdrv.key_fields[:-1] if q in tdrv.references]
        if quals:
            example = matching[0].spec.get(quals[0])
            shown = example.address.name if isinstance(example, Ref) else DEFAULT_DOMAIN
            text += f"; qualify it, e.g. {{{name_field}: {name}, {quals[0]}: {shown}}}"
        return text

    @staticmethod
    def qualifies(c: Item, q: str, v: str) -> bool:
        value = c.spec.get(q)
        if isinstance(value, Ref):
            if value.address.kind == "domains" and value.address.name == DEFAULT_DOMAIN:
                return v.lower() == DEFAULT_DOMAIN.lower()
            return value.address.name == v
        return value is None and q == "domain" and v.lower() == DEFAULT_DOMAIN.lower()

    def same_scope(self, it: Item, c: Item, tdrv: type[Driver]) -> bool:
        """Same project / domain as the referrer, for every qualifier both have."""
        rdrv = self.drivers[it.kind]
        comparable = False
        for q in tdrv.key_fields[:-1]:
            if q not in tdrv.references or q not in rdrv.references:
                continue
            mine, theirs = self.scope_value(it.spec.get(q), q), self.scope_value(c.spec.get(q), q)
            if mine is None or theirs is None:
                continue
            comparable = True
            if mine != theirs:
                return False
        return comparable

    @staticmethod
    def scope_value(value: Any, q: str) -> Address | None:
        if isinstance(value, Ref):
            return value.address
        if value is None and q == "domain":
            return Address("domains", (DEFAULT_DOMAIN,))
        return None  # unresolved yet: no scope information

    def resolve_rest(self, it: Item) -> None:
        for site in it.sites:
            if (
                site.ref is not None
                or site.bad
                or (site.path[0] in self.drivers[it.kind].key_fields and len(site.path) == 1)
            ):
                continue
            site.ref = self.resolve(it, site)
            if site.ref is not None:
                set_at(it.spec, site.path, site.ref)

    def check_absent_targets(self, it: Item) -> None:
        if it.state != "present":
            return
        for site in it.sites:
            target = self.by_address.get(site.ref.address) if site.ref else None
            if target is not None and target.state == "absent":
                self.error(
                    f"{it.label} is present but its {schema_mod.render_path(site.path)} refers to "
                    f"{target.address}, which is marked absent",
                    it.src(site.path),
                    it,
                )
