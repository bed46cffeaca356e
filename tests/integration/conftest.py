"""Integration tier: tests that talk to the local cloud started by ``devcloud/up``.

Every test collected under tests/integration/ is marked ``integration`` automatically. When
the cloud does not answer, the tests FAIL (never skip): CI must not pass without a cloud.

Fixtures:
  devcloud_clouds_yaml  path of clouds.yaml (env OS_CLIENT_CONFIG_FILE, default
                        <repo>/.devcloud/clouds.yaml), checked to answer
  admin_cloud_config    openstack.config CloudRegion for cloud ``devcloud`` (admin)
  demo_cloud_config     CloudRegion for ``devcloud-demo`` (user demo, project demo, member)
  unique_name           ``it-<random>-`` prefix, a str that is also callable:
                        ``unique_name('net')`` -> ``it-1a2b3c-net``
"""

import os
import secrets
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
START_HINT = 'start the local cloud with `devcloud/up` (or `make cloud-up`)'


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


def _config_path():
    return Path(os.environ.get('OS_CLIENT_CONFIG_FILE') or REPO / '.devcloud' / 'clouds.yaml')


@pytest.fixture(scope='session')
def devcloud_clouds_yaml():
    path = _config_path()
    if not path.is_file():
        pytest.fail(f'no clouds.yaml at {path}: {START_HINT}', pytrace=False)
    import openstack.config

    region = openstack.config.OpenStackConfig(config_files=[str(path)]).get_one('devcloud')
    auth_url = region.config['auth']['auth_url']
    try:  # fast, bounded probe first: a dead cloud must not hang the run
        requests.get(auth_url, timeout=10).raise_for_status()
        region.get_session().get_token()
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable cloud"
        pytest.fail(f'the cloud in {path} does not answer at {auth_url} ({exc!r}): '
                    f'{START_HINT}', pytrace=False)
    return path


def _region(path, cloud):
    import openstack.config

    return openstack.config.OpenStackConfig(config_files=[str(path)]).get_one(cloud)


@pytest.fixture(scope='session')
def admin_cloud_config(devcloud_clouds_yaml):
    """CloudRegion of cloud ``devcloud`` (admin); ``.get_session()`` is cached per region."""
    return _region(devcloud_clouds_yaml, 'devcloud')


@pytest.fixture(scope='session')
def demo_cloud_config(devcloud_clouds_yaml):
    """CloudRegion of cloud ``devcloud-demo`` (non-admin user demo in project demo)."""
    return _region(devcloud_clouds_yaml, 'devcloud-demo')


class UniqueName(str):
    """The prefix ``it-<random>-``; calling it appends a suffix."""

    def __call__(self, suffix=''):
        return self + suffix


def new_unique_name():
    return UniqueName(f'it-{secrets.token_hex(4)}-')


@pytest.fixture
def unique_name():
    return new_unique_name()
