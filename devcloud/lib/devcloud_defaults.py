"""What a standard deployment has once its services run: Cinder's volume service up, a
default external network and subnet pool (Neutron's auto-allocated topology), and Glance's
metadata definitions (loaded by the glance schema sync, see devcloud_schemas.py)."""

from __future__ import annotations

import json

from devcloud_common import NOVA_HOST, Failure, log
from devcloud_procs import request

# devstack's defaults, renamed: a flat provider network on physnet "public" (the fake
# chassis maps it; tests use VLANs there, never flat) and a shared default pool for project
# subnets. Not named "public": the example manifests create and delete a network so named.
PUBLIC_NET = {'name': 'devcloud-public', 'router:external': True, 'is_default': True,
              'provider:network_type': 'flat', 'provider:physical_network': 'public',
              'description': 'devcloud default external network (auto-allocated topology)'}
PUBLIC_SUBNET = {'name': 'devcloud-public-subnet', 'ip_version': 4, 'cidr': '172.24.4.0/24',
                 'gateway_ip': '172.24.4.1', 'enable_dhcp': False,
                 'allocation_pools': [{'start': '172.24.4.10', 'end': '172.24.4.250'}]}
DEFAULT_POOL = {'name': 'shared-default-subnetpool-v4', 'prefixes': ['10.0.0.0/16'],
                'default_prefixlen': 26, 'shared': True, 'is_default': True}


class CloudDefaults:
    """Readiness of the block storage service and the network defaults (mixed into Cloud)."""

    def wait_cinder(self, hdr):
        """cinder-scheduler and cinder-volume report "up" (a volume created before the
        volume service listens stays in "creating")."""
        url = self.s.url('cinder') + '/v3/os-services'

        def up(binary):
            code, _, body = request('GET', f'{url}?binary={binary}', headers=hdr, timeout=30)
            return code == 200 and any(
                svc['state'] == 'up' and svc['status'] == 'enabled'
                and svc['host'].split('@')[0] == NOVA_HOST
                for svc in json.loads(body).get('services', []))
        for binary in ('cinder-scheduler', 'cinder-volume'):
            self.wait(f'{binary} to report up in os-services', lambda b=binary: up(b), binary,
                      interval=0.5)
        log('cinder: scheduler and volume service up')

    def network_defaults(self, hdr):
        """The default external network, its subnet and the default subnet pool (once)."""
        marker = self.s.data / '.network-defaults'
        if marker.exists():
            return
        api = self.s.url('neutron') + '/v2.0'

        def call(method, path, body=None):
            code, _, data = request(method, api + path, body, headers=hdr, timeout=60)
            if code is None or code >= 300:
                raise Failure(f'neutron {method} {path} answered {code}: {data[:300]!r}',
                              'neutron-api')
            return json.loads(data) if data else {}

        nets = call('GET', f'/networks?name={PUBLIC_NET["name"]}&router:external=true')['networks']
        net = nets[0] if nets else call('POST', '/networks', {'network': PUBLIC_NET})['network']
        if not call('GET', f'/subnets?network_id={net["id"]}')['subnets']:
            call('POST', '/subnets', {'subnet': dict(PUBLIC_SUBNET, network_id=net['id'])})
        if not call('GET', '/subnetpools?name=' + DEFAULT_POOL['name'])['subnetpools']:
            call('POST', '/subnetpools', {'subnetpool': DEFAULT_POOL})
        marker.write_text(f'{net["id"]}\n')
        log(f'neutron: default external network {PUBLIC_NET["name"]} and default subnet pool')
