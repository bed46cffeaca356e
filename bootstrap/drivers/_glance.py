"""Shared pieces of the images driver: content identity, streaming and hashing.

Content identity, in this order (the first that applies decides):
1. `checksum` given in the manifest: compared with Glance's `os_hash_value` when the
   algorithms agree, else with `owner_specified.openstack.sha256` (openstacksdk/Ansible
   uploads record it). Neither downloads nor hashes anything at plan time.
2. `source.file`: the file is hashed at plan time (streamed, by a `FileDigests` probe
   the images driver declares) with the image's `os_hash_algo` (sha512 by default), or
   sha256 against `owner_specified...sha256`.
3. `source.url` without checksum: the URL itself. Its sha256 is recorded in the image
   property `openstack_bootstrap.source_url_sha256` on upload, so a plan never downloads;
   a changed URL is a new image. Content changing behind the same URL goes unnoticed:
   give `checksum` to pin it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

# Attributes of a Glance image that are not "extra properties".
CORE = frozenset(
    {
        "id",
        "name",
        "status",
        "visibility",
        "protected",
        "checksum",
        "owner",
        "size",
        "virtual_size",
        "min_ram",
        "min_disk",
        "disk_format",
        "container_format",
        "created_at",
        "updated_at",
        "tags",
        "file",
        "schema",
        "self",
        "direct_url",
        "locations",
        "os_hidden",
        "os_hash_algo",
        "os_hash_value",
        "stores",
    }
)
# Properties that are bookkeeping (ours, openstacksdk's, Glance's own), never "drift".
INTERNAL_PREFIXES = (
    "os_glance_",
    "owner_specified.openstack.",
    "owner_specified.shade.",
    "openstack_bootstrap.",
)
MARKER_PROP = "managed_by"
MARKER_VALUE = "openstack-bootstrap"
STACK_PROP = "bootstrap_stack"  # the stack whose manifest declares the image
URL_PROP = "openstack_bootstrap.source_url_sha256"
SDK_SHA256 = "owner_specified.openstack.sha256"
SHADE_SHA256 = "owner_specified.shade.sha256"  # older openstacksdk (shade) uploads
CHUNK = 1024 * 1024


def extra_properties(image: dict[str, Any]) -> dict[str, str]:
    return {
        k: prop_text(v)
        for k, v in image.items()
        if k not in CORE
        and k not in (MARKER_PROP, STACK_PROP)
        and not k.startswith(INTERNAL_PREFIXES)
    }


def prop_text(value: Any) -> str:
    """Glance keeps extra properties as strings: true -> "true", 2 -> "2"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def checksum_algo(checksum: str) -> str:
    return "sha256" if len(checksum) == 64 else "sha512"


def live_digests(image: dict[str, Any]) -> dict[str, str]:
    """algorithm -> hex digest of the image's data as Glance (or its uploader) recorded it."""
    out: dict[str, str] = {}
    # openstacksdk records it only with validate_checksum=True; "" otherwise.
    sdk = image.get(SDK_SHA256) or image.get(SHADE_SHA256)
    if sdk:
        out["sha256"] = str(sdk).lower()
    algo, value = image.get("os_hash_algo"), image.get("os_hash_value")
    if algo and value:
        out[str(algo)] = str(value).lower()  # Glance computed it: wins over a claim
    return out


def url_digest(url: str) -> str:
    # A digest, not the URL: signed URLs carry credentials that must not end up in Glance.
    return hashlib.sha256(url.encode()).hexdigest()


def short(digest: str) -> str:
    return digest[:16] + "..."


def new_hasher(algo: str) -> Any:
    if algo == "md5":
        return hashlib.md5(usedforsecurity=False)
    return hashlib.new(algo)


def file_digests(path: str, algos: list[str]) -> dict[str, str]:
    """Hash a local file with several algorithms in one streamed pass."""
    hashers = {a: new_hasher(a) for a in algos}
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            for h in hashers.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hashers.items()}


class HashingReader:
    """A file-like wrapper that hashes what is read through it and reports progress."""

    def __init__(
        self,
        stream: IO[bytes],
        algos: list[str],
        on_read: Callable[[int], None] | None = None,
    ):
        self.stream = stream
        self.hashers = {a: new_hasher(a) for a in algos}
        self.on_read = on_read
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        if chunk:
            for h in self.hashers.values():
                h.update(chunk)
            self.bytes += len(chunk)
            if self.on_read:
                self.on_read(len(chunk))
        return chunk

    def digests(self) -> dict[str, str]:
        return {a: h.hexdigest() for a, h in self.hashers.items()}


@contextlib.contextmanager
def open_source(source: dict[str, str]) -> Iterator[tuple[IO[bytes], int | None, str]]:
    """(stream, size or None, label) of an image source; never reads it all into memory.

    URLs are fetched with plain `requests`, NOT the cloud session: the token must not
    go to a third-party server.
    """
    if "file" in source:
        path = source["file"]
        with open(path, "rb") as fh:
            yield fh, os.fstat(fh.fileno()).st_size, os.path.basename(path)
        return
    import requests

    url = source["url"]
    with requests.get(url, stream=True, timeout=(15, 300)) as resp:
        resp.raise_for_status()
        resp.raw.decode_content = True  # a gzip transfer encoding is not image data
        length = resp.headers.get("Content-Length")
        encoded = resp.headers.get("Content-Encoding") not in (None, "identity")
        size = int(length) if length and length.isdigit() and not encoded else None
        yield resp.raw, size, url.rsplit("/", 1)[-1] or url


@contextlib.contextmanager
def progress(live: Any, label: str, total: int | None) -> Iterator[Callable[[int], None] | None]:
    """An upload progress bar, only on a terminal (never in tests or CI logs).

    `live` is the apply's display (`ApplyContext.progress`, a rich Progress) when the CLI
    shows one: the bar joins it (two live displays on one terminal would garble each
    other). Else a bar of its own is drawn on stderr.
    """
    if live is not None and not live.disable:
        task = live.add_task(f"upload {label}", total=total)
        try:
            yield lambda n: live.advance(task, n)
        finally:
            live.remove_task(task)
        return
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("uploading {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
