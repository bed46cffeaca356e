"""Loading manifest files: read, parse, schema-check, prepare specs, key, resolve, check."""

from __future__ import annotations

import codecs
import dataclasses
import os
import re
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bootstrap import schema as schema_mod
from bootstrap.drivers.base import Driver, registry
from bootstrap.errors import Diagnostic, Source
from bootstrap.manifest.checks import Checker
from bootstrap.manifest.lang import LoadOptions, Variables, read_var_file, unevaluated
from bootstrap.manifest.lifecycle import read_lifecycle
from bootstrap.manifest.overlay import merge_layers
from bootstrap.manifest.refs import References
from bootstrap.manifest.repeat import expand
from bootstrap.manifest.specs import File, Item, Site, record_sources, set_at, singular, walk
from bootstrap.manifest.yaml import YList, YMap, line_col, locate, parse_yaml, plain
from bootstrap.model import Manifest, Resource, Secret

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_SECRET_FILE_BYTES = 1024 * 1024
YAML_SUFFIXES = (".yaml", ".yml")


class Loader:
    def __init__(self, environ: Mapping[str, str] | None, options: LoadOptions):
        self.env = os.environ if environ is None else environ
        self.options = options
        self.drivers: dict[str, type[Driver]] = registry()
        self.diags: list[Diagnostic] = []
        self.files: list[File] = []
        self.items: list[Item] = []
        self.refs = References(self.drivers, self.error)
        self.unusable = False
        self.layers = 1
        self.real_files: dict[str, str] = {}  # display name -> path read
        self.secret_texts: dict[str, str] = {}  # secret file path -> its text, once read
        self.stack: str | None = None
        self.pending: list[tuple[Diagnostic, Item | str | None]] = []
        self.yaml_errors: set[Source | None] = set()
        # Strings whose ${...} could not be evaluated (reported there, nowhere else).
        self.lang_errors: set[Source] = set()

    def error(self, summary: str, src: Source | None, item: Item | str | None = None) -> None:
        self.pending.append((Diagnostic("error", summary, source=src), item))

    def warn(self, summary: str, src: Source | None, item: Item | str | None = None) -> None:
        self.pending.append((Diagnostic("warning", summary, source=src), item))

    def finish_diagnostics(self) -> None:
        """Attach addresses now that they are known (secrets are read before keys exist);
        a resource stamped by for_each is named by its item's key too."""
        for diag, item in self.pending:
            address = item.label if isinstance(item, Item) else item
            key = getattr(item.node, "each_key", None) if isinstance(item, Item) else None
            summary = diag.summary + (f" (for_each item '{key}')" if key is not None else "")
            self.diags.append(dataclasses.replace(diag, summary=summary, address=address))
        self.pending = []

    # -- files --

    def expand(self, paths: list[str]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        seen: set[str] = set()
        for p in paths:
            path = Path(p)
            if path.is_dir():
                found = sorted(
                    (
                        f
                        for f in path.rglob("*")
                        if f.suffix in YAML_SUFFIXES
                        and f.is_file()
                        and not any(part.startswith(".") for part in f.relative_to(path).parts)
                    ),
                    key=lambda f: f.relative_to(path).as_posix(),
                )
                if not found:
                    self.error(f"no *.yaml or *.yml files in directory '{p}'", Source(p))
                    self.unusable = True
                files = [(str(f), str(f)) for f in found]
            elif path.is_file():
                files = [(p, p)]
            elif path.exists():
                self.error(f"'{p}' is not a regular file", Source(p))
                self.unusable = True
                continue
            else:
                self.error(f"no such file or directory: '{p}'", Source(p))
                self.unusable = True
                continue
            for display, real in files:
                key = os.path.realpath(real)
                if key not in seen:
                    seen.add(key)
                    out.append((display, real))
        if not paths:
            self.error("no manifest files given", None)
            self.unusable = True
        return out

    def read(self, display: str, real: str, layer: int) -> File | None:
        where = Source(display, 1, 1)
        try:
            size = os.stat(real).st_size
            if size > MAX_FILE_BYTES:
                self.error(
                    f"file is {size / 1024 / 1024:.1f} MB; manifest files are limited to "
                    f"{MAX_FILE_BYTES // 1024 // 1024} MB ({MAX_FILE_BYTES} bytes) and "
                    "this one was not parsed",
                    where,
                )
                return None
            with open(real, "rb") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            self.error(f"cannot read the file: {exc.strerror}", Source(display))
            return None
        if len(data) > MAX_FILE_BYTES:  # grew between stat and read
            self.error(f"file is over the {MAX_FILE_BYTES} bytes limit", where)
            return None
        if data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8) :]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            before = data[: exc.start].decode("utf-8", errors="replace")
            line, col = line_col(before, len(before))
            self.error("the file is not valid UTF-8", Source(display, line, col))
            return None
        root, diags = parse_yaml(text, display)
        self.pending.extend((d, None) for d in diags)
        # A refused value (alias, unknown tag) became null: schema errors there would only
        # repeat the refusal.
        self.yaml_errors.update(d.source for d in diags)
        if root is None:
            return None
        if not isinstance(root, YMap):
            got = schema_mod.describe(plain(root))
            self.error(
                "the top level of a manifest must be a mapping of sections "
                f"(projects:, networks:, ...), got {got}",
                where if not isinstance(root, YList) else root.start,
            )
            return None
        if any(d.is_error for d in diags):
            # Keep checking what parsed, but a tree with refused parts is not a manifest.
            self.unusable = True
        literal = "${" not in text and "\\" not in text  # see File.literal
        return File(display, real, root, layer=layer, literal=literal)

    # -- per file --

    def hidden(self, path: tuple) -> bool:
        """Values of secret fields never appear in messages."""
        drv = self.drivers.get(path[0]) if path else None
        return bool(drv and len(path) >= 3 and path[2] in drv.secret_fields)

    def check_file(self, f: File, bundle: dict, checker: Any, fast: Any = None) -> None:
        f.problems = schema_mod.check(f.root, bundle, self.hidden, checker, fast)
        bad_by_item: dict[tuple, list[tuple]] = defaultdict(list)
        for p in f.problems:
            for b in p.bad:
                if len(b) >= 2:
                    bad_by_item[b[:2]].append(tuple(b[2:]))
        for kind in self.drivers:
            section = f.root.get(kind)
            if not isinstance(section, YList):
                continue
            for i, node in enumerate(section):
                if isinstance(node, YMap):
                    bad = bad_by_item[(kind, i)]
                    if self.lang_errors:
                        bad += unevaluated(node, self.lang_errors)
                    self.items.append(Item(kind, f.display, f.real, i, node, bad=bad))

    def check_versions(self) -> None:
        stack = None
        for layer in range(self.layers):
            files = [f for f in self.files if f.layer == layer]
            self.agreed("version", files)
            stack = self.agreed("stack", files) or stack  # an environment's stack wins
        self.stack = stack if isinstance(stack, str) else None

    def agreed(self, key: str, files: list[File]) -> Any:
        """A top-level setting every file of a layer that gives it must give alike."""
        first: tuple[Any, Source] | None = None
        for f in files:
            if key not in f.root:
                continue
            value, src = f.root[key], f.root.val_src[key]
            if first is None:
                first = (value, src)
            elif value != first[0]:
                self.error(f"{key} {value!r} differs from {key} {first[0]!r} at {first[1]}", src)
        return first[0] if first is not None else None

    # -- specs --

    def prepare(self, it: Item) -> None:
        drv = self.drivers[it.kind]
        state = it.node.get("state")
        it.state = state if state in ("present", "absent") else "present"
        it.managed = it.node.get("managed") is not False
        if not it.managed and it.state == "absent":
            self.diags.append(
                Diagnostic(
                    "error",
                    "managed: false and state: absent contradict each other: a resource "
                    "that is only looked up is never deleted",
                    source=it.node.start,
                )
            )
        it.spec = plain(it.node)
        it.spec.pop("state", None)
        it.spec.pop("managed", None)
        it.lifecycle = read_lifecycle(it, drv, self.error)
        record_sources(it.node, "", it.sources)
        for decl, name in drv.item_shorthand.items():
            for path, value in list(walk(it.spec, decl)):
                if isinstance(value, str):
                    set_at(it.spec, path, {name: value})
                    it.sources[schema_mod.render_path(path + (name,))] = it.src(path)
        for decl, targets in drv.field_shorthand.items():
            parent_decl, _, name = decl.rpartition(".")
            for path, parent in list(walk(it.spec, parent_decl)):
                if isinstance(parent, dict) and name in parent and not it.is_bad(path + (name,)):
                    value = parent.pop(name)
                    for t in targets:
                        parent[t] = value
                        it.sources[schema_mod.render_path(path + (t,))] = it.src(path + (name,))
        for decl, defaults in drv.item_defaults.items():
            for _path, item in walk(it.spec, decl):
                if isinstance(item, dict):
                    for k, v in defaults.items():
                        item.setdefault(k, v)
        for name in sorted(drv.secret_fields):
            if name in it.spec:
                secret = self.secret(it, drv, name, it.spec[name])
                if secret is None:
                    del it.spec[name]  # never keep an unread or invalid secret in plain text
                else:
                    it.spec[name] = secret
        for decl, mode in drv.path_fields.items():
            for path, value in list(walk(it.spec, decl)):
                if isinstance(value, str) and not it.is_bad(path):
                    resolved = self.resolve_path(it, value, path)
                    set_at(it.spec, path, resolved)
                    if mode == "read" and it.state == "present":
                        self.check_readable(it, path, value, resolved)
        for decl, target in drv.references.items():
            for path, value in walk(it.spec, decl):
                if value is not None:
                    it.sites.append(Site(path, decl, target, value, it.is_bad(path)))

    def resolve_path(self, it: Item, raw: str, path: tuple = ()) -> str:
        """Relative to the file the value was written in (an environment's own file)."""
        expanded = os.path.expanduser(raw)
        if not os.path.isabs(expanded):
            written = it.src(path).file if path else it.real_file
            if written not in self.real_files:
                written = it.real_file
            written = self.real_files.get(written, written)
            expanded = os.path.join(os.path.dirname(os.path.abspath(written)), expanded)
        return os.path.normpath(expanded)

    def check_readable(self, it: Item, path: tuple, raw: str, resolved: str) -> bool:
        src = it.src(path)
        if not os.path.exists(resolved):
            self.error(f"file not found: '{raw}' (looked for {resolved})", src, it)
        elif not os.path.isfile(resolved):
            self.error(f"'{raw}' is not a regular file", src, it)
        elif not os.access(resolved, os.R_OK):
            self.error(f"file '{raw}' is not readable", src, it)
        else:
            return True
        return False

    def secret(self, it: Item, drv: type[Driver], name: str, value: Any) -> Secret | None:
        if it.is_bad((name,)) or it.state == "absent":
            return None  # an absent resource needs no secret (deleting needs no password)
        if isinstance(value, str):
            if name in drv.warn_inline_secret:
                self.warn(
                    f"{name} written inline; use {{env: ...}} or {{file: ...}}",
                    it.src((name,)),
                    it,
                )
            return Secret(value, "inline")
        if not isinstance(value, dict):
            return None
        if "env" in value:
            var = value["env"]
            src = it.src((name, "env"))
            text = self.env.get(var)
            if text is None:
                self.missing_secret(f"environment variable '{var}' is not set ({name})", src, it)
                return None
            if text == "":
                self.error(f"environment variable '{var}' is empty ({name})", src, it)
                return None
            return Secret(text, f"env:{var}")
        raw = value["file"]
        resolved = self.resolve_path(it, raw, (name, "file"))
        if resolved in self.secret_texts:  # one password file for 4,000 users: read once
            return Secret(self.secret_texts[resolved], f"file:{raw}")
        if not os.path.exists(resolved) and self.options.missing_secrets == "warn":
            self.missing_secret(f"secret file '{raw}' not found (looked for {resolved})",
                                it.src((name, "file")), it)
            return None
        if not self.check_readable(it, (name, "file"), raw, resolved):
            return None
        src = it.src((name, "file"))
        if os.path.getsize(resolved) > MAX_SECRET_FILE_BYTES:
            self.error(f"secret file '{raw}' is larger than 1 MB", src, it)
            return None
        try:
            with open(resolved, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not valid UTF-8"
            self.error(f"cannot read secret file '{raw}': {reason}", src, it)
            return None
        text = text.removesuffix("\n").removesuffix("\r")
        if text == "":
            self.error(f"secret file '{raw}' is empty", src, it)
            return None
        self.secret_texts[resolved] = text
        return Secret(text, f"file:{raw}")

    def missing_secret(self, summary: str, src: Source, it: Item) -> None:
        """Offline (validate), a secret not at hand is a warning: the reviewer's machine
        never has production's; plan and apply need it."""
        if self.options.missing_secrets == "warn":
            self.warn(summary + "; plan and apply need it (validate --require-secrets: "
                      "an error)", src, it)
        else:
            self.error(summary, src, it)

    # -- run --

    def run(self, paths: list[str]) -> tuple[Manifest | None, list[Diagnostic]]:
        bundle = schema_mod.load_bundle()
        fast = schema_mod.fast_validator(bundle)  # compiled once for every file
        # The located check (jsonschema) is built only when a file fails the fast one.
        checker = None if fast is not None else schema_mod.validator(bundle)
        layers = [paths] + [[p] for p in self.options.env]
        self.layers = len(layers)
        for number, layer in enumerate(layers):
            for display, real in self.expand(layer):
                file = self.read(display, real, number)
                if file is None:
                    self.unusable = True
                    continue
                self.files.append(file)
                self.real_files[display] = real
        self.evaluate()
        for f in self.files:
            self.check_file(f, bundle, checker, fast)
        self.check_versions()
        for it in self.items:
            self.prepare(it)
        order = {k: i for i, k in enumerate(self.refs.key_order())}
        for it in sorted(self.items, key=lambda i: order[i.kind]):
            self.refs.key(it)
        for it in self.items:
            self.refs.resolve_rest(it)
        for it in self.items:
            self.refs.check_absent_targets(it)
            self.drivers[it.kind].check(Checker(it, self.refs, self.error, self.warn))
            self.check_creatable(it)
        self.report_schema_problems()
        self.finish_diagnostics()
        order_of_file = {f.display: i for i, f in enumerate(self.files)}
        self.diags.sort(key=lambda d: _diag_order(d, order_of_file))
        if self.unusable:
            return None, self.diags
        rank = {k: i for i, k in enumerate(self.drivers)}
        keyed = [it for it in self.items if it.address is not None and not it.duplicate]
        keyed.sort(key=lambda it: (rank.get(it.kind, len(rank)), order_of_file[it.file], it.index))
        manifest = Manifest(files=[f.display for f in self.files], stack=self.stack)
        for it in keyed:
            manifest.resources[it.address] = Resource(
                it.address,
                it.spec,
                it.state,
                it.node.start,
                dict(it.sources),
                it.managed,
                it.lifecycle,
            )
        return manifest, self.diags

    def evaluate(self) -> None:
        """Variables declared, given values, used; for_each stamped; layers merged."""
        variables = Variables(lambda summary, src: self.error(summary, src))
        for layer in range(self.layers):
            variables.declare_layer(
                [(f.root["vars"], f.root.val_src["vars"]) for f in self.files
                 if f.layer == layer and "vars" in f.root]
            )
        var_files = []
        for path in self.options.var_files:
            root, diags = read_var_file(path, MAX_FILE_BYTES)
            self.pending.extend((d, None) for d in diags)
            var_files.append((path, root))
        variables.set_inputs(self.env, var_files, self.options.var_args)
        variables.check_defaults()
        sections = set(self.drivers)
        for f in self.files:
            f.root = expand(
                f.root, sections, variables, variables.report, self.lang_errors, f.literal
            )
        merge_layers(
            [[f for f in self.files if f.layer == n] for n in range(self.layers)],
            self.drivers,
            variables.report,
        )

    def check_creatable(self, it: Item) -> None:
        """Warn when a managed resource could not be created: fine if it already exists
        (an image adopted by name), so only the plan, which knows, can make it an error.
        A field written but unusable was reported already."""
        if it.state != "present" or not it.managed or it.address is None or it.duplicate:
            return
        drv = self.drivers[it.kind]
        missing = [
            f
            for f in sorted(drv.required_for_create)
            if f not in it.node
        ]
        if missing:
            self.warn(
                f"{singular(it.kind)} {it.address.name} cannot be created without "
                f"{' and '.join(missing)}; fine if it already exists (managed: false says it must)",
                it.node.start,
                it,
            )

    def report_schema_problems(self) -> None:
        by_pos = {(it.file, it.kind, it.index): it for it in self.items}
        for f in self.files:
            for p in f.problems:
                it = by_pos.get((f.display, p.path[0], p.path[1])) if len(p.path) >= 2 else None
                src = locate(f.root, p.path, p.at_key)
                if src not in self.yaml_errors and src not in self.lang_errors:
                    self.error(p.message, src, it)


TOP_LEVEL_KEY = re.compile(r"^([A-Za-z_][\w-]*)[ \t]*:", re.MULTILINE)


def sections_named(paths: list[str], options: LoadOptions | None = None) -> set[str]:
    """The top-level keys the manifest's files (and environment layers) appear to have,
    from their text alone, before any parsing: a guess, for reading the cloud while the
    manifest loads. Nothing may depend on it being right."""
    loader = Loader(None, options or LoadOptions())
    names: set[str] = set()
    for layer in [paths] + [[p] for p in loader.options.env]:
        for _display, real in loader.expand(layer):
            try:
                with open(real, encoding="utf-8", errors="replace") as f:
                    names.update(TOP_LEVEL_KEY.findall(f.read()))
            except OSError:
                continue  # the load reports it
    return names


def _diag_order(d: Diagnostic, files: dict[str, int]) -> tuple:
    if d.source is None:
        return (-1, 0, 0, 0)
    return (files.get(d.source.file, len(files)), d.source.line, d.source.column, 0)


def import_dependencies() -> None:
    """Import what a load imports on first use (every driver module, jsonschema-rs), so
    a caller that times phases counts it as imports, not as the load's work."""
    registry()
    import jsonschema_rs  # noqa: F401


def load(
    paths: list[str],
    environ: Mapping[str, str] | None = None,
    options: LoadOptions | None = None,
) -> tuple[Manifest | None, list[Diagnostic]]:
    """Load and check manifest files/folders; every diagnostic found, in file order.

    The Manifest is None only when a file could not be read or parsed (the manifest would
    be incomplete); otherwise it holds every resource that got an address, even when other
    diagnostics are errors. Callers must stop when any diagnostic is an error.
    `environ` replaces os.environ for {env: NAME} secrets and BOOTSTRAP_VAR_* (tests);
    `options` adds environment layers, variable values and how missing secrets count.
    """
    return Loader(environ, options or LoadOptions()).run(list(paths))
