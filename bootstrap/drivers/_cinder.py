"""Shared pieces of the Cinder kinds and of servers using volumes: the status wait,
attaching in order, booting from a volume.

Cinder answers a create, an extend or a delete at once and does the work in the
background (an image is copied in: minutes for a big one); Nova attaches asynchronously.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from bootstrap.errors import ResourceFailed, WaitTimeout
from bootstrap.plan import Observed, SetDelta

WAIT_TIMEOUT = 600.0
POLL = 1.0


def wait_status(cloud, volume_id, *statuses, size=None, timeout=WAIT_TIMEOUT):
    """Poll the volume until it is in one of `statuses` (None: gone)."""
    from openstack import exceptions

    bs = cloud.block_storage
    deadline = time.monotonic() + timeout
    status = "unknown"
    while True:
        try:
            volume = bs.get_volume(volume_id)
        except exceptions.NotFoundException:
            if None in statuses:
                return None
            raise ResourceFailed(f"volume {volume_id} vanished while waiting for it") from None
        status = volume.status
        if status.startswith("error"):
            raise ResourceFailed(f"volume {volume_id} went to {status}")
        if status in statuses and (size is None or volume.size == size):
            return volume
        if time.monotonic() > deadline:
            want = " or ".join(s or "gone" for s in statuses)
            raise WaitTimeout(
                f"volume {volume_id} did not reach {want} within {timeout:g}s "
                f"(last status: {status})",
                retryable=False,
            )
        time.sleep(POLL)


def attach_volumes(cloud: Any, server_id: str, delta: SetDelta) -> None:
    """Detach what is no longer listed, then attach in the declared order, each one
    in-use before the next (Nova names the devices in the order it attaches them)."""
    for volume_id in delta.remove:
        cloud.nova.volumes.delete_server_volume(server_id, volume_id)
        wait_status(cloud, volume_id, "available")
    for volume_id in delta.add:
        cloud.nova.volumes.create_server_volume(server_id, volume_id)
        wait_status(cloud, volume_id, "in-use")


def boot_from(volume_id: Any) -> list[dict[str, Any]]:
    """Nova's block device mapping of a server booting from an existing volume (kept when
    the server is deleted: the volume is the manifest's own resource)."""
    return [
        {
            "boot_index": 0,
            "uuid": volume_id,
            "source_type": "volume",
            "destination_type": "volume",
            "delete_on_termination": False,
        }
    ]


def boot_volume_apart(observed: Observed, desired: dict[str, Any]) -> Observed:
    """Nova lists a server's root volume among its attached volumes and reports no image
    for it: a server booted from the manifest's boot volume has it as `boot_volume`, not
    among `volumes` (which the manifest lists without it)."""
    boot = desired.get("boot_volume")
    if "boot_volume" not in desired or not isinstance(boot, str):
        return observed
    attached = list(observed.fields.get("volumes") or [])
    booted = not observed.fields.get("image") and boot in attached
    fields = {
        **observed.fields,
        "boot_volume": boot if booted else None,
        "volumes": [v for v in attached if v != boot] if booted else attached,
    }
    return dataclasses.replace(observed, fields=fields)
