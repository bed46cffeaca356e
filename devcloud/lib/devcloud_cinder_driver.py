"""devcloud's block storage: a Cinder volume driver keeping each volume in a sparse file.

Loaded by cinder-volume with ``volume_driver = devcloud_cinder_driver.FileVolumeDriver``
(devcloud/lib is on its PYTHONPATH). Cinder's own file drivers (NFS, Quobyte, ...) mount
a share and LVM needs a volume group and an iSCSI target: both need kernel modules and
privileges a throwaway cloud on one host should not ask for. Here a volume is
``<state_path>/volumes/volume-<id>``, created sparse (no disk used until written), so a
100 GiB volume costs nothing. Attaching hands out a ``local`` connection (the file's path):
nova's emulated hypervisor records it and reads nothing, so attach/detach, extend, images
to and from volumes, snapshots and clones all run through the real Cinder and Nova code.
"""

import contextlib
import os
import shutil

from cinder.volume import driver
from oslo_config import cfg
from oslo_log import log as logging

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
GiB = 1024 ** 3


class FileVolumeDriver(driver.VolumeDriver):
    VERSION = '1.0.0'
    # CI_WIKI_NAME is what cinder's driver list expects of every driver
    CI_WIKI_NAME = 'devcloud'

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.root = os.path.join(CONF.state_path, 'volumes')
        self.backend = self.configuration.safe_get('volume_backend_name') or 'devcloud-file'

    # ------------------------------------------------------------------ setup, stats
    def do_setup(self, context):
        os.makedirs(self.root, exist_ok=True)

    def check_for_setup_error(self):
        if not os.access(self.root, os.W_OK):
            raise RuntimeError(f'{self.root} is not writable')

    def _update_volume_stats(self):
        st = os.statvfs(self.root)
        self._stats = {
            'volume_backend_name': self.backend, 'vendor_name': 'devcloud',
            'driver_version': self.VERSION, 'storage_protocol': 'local',
            # sparse files: thin provisioned; report what the folder's filesystem has
            'total_capacity_gb': st.f_blocks * st.f_frsize // GiB,
            'free_capacity_gb': st.f_bavail * st.f_frsize // GiB,
            'reserved_percentage': 0, 'thin_provisioning_support': True,
            'max_over_subscription_ratio': 20.0, 'multiattach': False,
        }

    def get_volume_stats(self, refresh=False):
        if refresh or not self._stats:
            self._update_volume_stats()
        return self._stats

    # ------------------------------------------------------------------ volumes
    def _path(self, volume):
        return os.path.join(self.root, f'volume-{volume.id}')

    def _snap_path(self, snapshot):
        return os.path.join(self.root, f'snapshot-{snapshot.id}')

    def create_volume(self, volume):
        with open(self._path(volume), 'wb') as f:
            f.truncate(volume.size * GiB)

    def delete_volume(self, volume):
        try:
            os.unlink(self._path(volume))
        except FileNotFoundError:
            LOG.info('volume file of %s already gone', volume.id)

    def extend_volume(self, volume, new_size):
        with open(self._path(volume), 'r+b') as f:
            f.truncate(new_size * GiB)

    def create_cloned_volume(self, volume, src_vref):
        shutil.copyfile(self._path(src_vref), self._path(volume))
        self.extend_volume(volume, volume.size)

    def create_snapshot(self, snapshot):
        shutil.copyfile(self._path(snapshot.volume), self._snap_path(snapshot))

    def delete_snapshot(self, snapshot):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._snap_path(snapshot))

    def create_volume_from_snapshot(self, volume, snapshot):
        shutil.copyfile(self._snap_path(snapshot), self._path(volume))
        self.extend_volume(volume, volume.size)

    # ------------------------------------------------------------------ images
    def copy_image_to_volume(self, context, volume, image_service, image_id,
                             disable_sparse=False):
        with open(self._path(volume), 'r+b') as f:
            image_service.download(context, image_id, f)
        self.extend_volume(volume, volume.size)  # the download may have cut the file

    def copy_volume_to_image(self, context, volume, image_service, image_meta):
        with open(self._path(volume), 'rb') as f:
            image_service.update(context, image_meta['id'], {}, f)

    # ------------------------------------------------------------------ exports, attach
    def create_export(self, context, volume, connector):
        return None

    def ensure_export(self, context, volume):
        return None

    def remove_export(self, context, volume):
        return None

    def initialize_connection(self, volume, connector, **kwargs):
        return {'driver_volume_type': 'local', 'data': {'device_path': self._path(volume)}}

    def terminate_connection(self, volume, connector, **kwargs):
        return None
