"""End-to-end smoke of the local cloud (devcloud) with the clients the tool uses.

All admin calls share ONE keystoneauth1 session built by openstacksdk's config loader from
clouds.yaml (``admin_cloud_config.get_session()``): python-keystoneclient v3,
python-glanceclient v2, python-novaclient (negotiated microversion) and openstacksdk's
network proxy. The non-admin ``devcloud-demo`` user repeats the network + keypair + server
steps in its own project with the admin's public image and flavor. Names are unique per run
and everything is deleted again, also when a step fails.
"""

import base64
import io
import os
import random
import re
import secrets
import time

import glanceclient
import openstack
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3 as ks_v3
from keystoneclient.v3 import client as ks_client
from novaclient import api_versions
from novaclient import client as nova_client
from novaclient import exceptions as nova_exc

BOOT_TIMEOUT = 180  # generous: CI machines are slow and noisy
HOST_KEYS_RE = re.compile(
    r'-----BEGIN SSH HOST KEY KEYS-----\r?\n(.*?)\r?\n-----END SSH HOST KEY KEYS-----', re.S)


# ----------------------------------------------------------------------------- helpers
class Cleanup:
    """LIFO stack of deletions; runs all of them and reports every failure."""

    def __init__(self):
        self._stack = []

    def add(self, what, fn, *args, **kwargs):
        self._stack.append((what, fn, args, kwargs))

    def run(self):
        errors = []
        while self._stack:
            what, fn, args, kwargs = self._stack.pop()
            try:
                fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                errors.append(f'{what}: {exc!r}')
        if errors:
            pytest.fail('cleanup failed:\n  ' + '\n  '.join(errors), pytrace=False)


@pytest.fixture
def cleanup():
    c = Cleanup()
    yield c
    c.run()


def wait_for(fn, what, timeout=BOOT_TIMEOUT, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f'timeout ({timeout}s) waiting for {what}')
        time.sleep(interval)


def ssh_public_key():
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).decode()


def nova_for(sess):
    """python-novaclient refuses '2.latest': negotiate the highest common microversion."""
    probe = nova_client.Client('2.1', session=sess)
    version = api_versions.discover_version(probe, api_versions.APIVersion('2.latest'))
    return nova_client.Client(version, session=sess)


def tenant_cidr():
    return f'10.{random.randint(0, 255)}.{random.randint(0, 255)}.0/24'


def external_cidr():  # carrier-grade NAT space: never a real route on the host
    return f'100.{random.randint(64, 127)}.{random.randint(0, 255)}.0/24'


def delete_server(nova, server_id):
    try:
        nova.servers.delete(server_id)
    except nova_exc.NotFound:
        return

    def gone():
        try:
            nova.servers.get(server_id)
        except nova_exc.NotFound:
            return True
        return False
    wait_for(gone, f'server {server_id} to be deleted', interval=0.25)


def host_keys(console):
    m = HOST_KEYS_RE.search(console)
    assert m, f'no SSH HOST KEY KEYS block in the console output:\n{console}'
    return [line.strip() for line in m.group(1).splitlines() if line.strip()]


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope='module')
def admin_session(admin_cloud_config):
    return admin_cloud_config.get_session()  # THE one keystoneauth1 session (cached)


@pytest.fixture(scope='module')
def clients(admin_cloud_config, admin_session):
    conn = openstack.connection.Connection(config=admin_cloud_config)
    assert conn.session is admin_session, 'openstacksdk did not reuse the session'
    return {
        'keystone': ks_client.Client(session=admin_session, interface='public'),
        'glance': glanceclient.Client('2', session=admin_session),
        'nova': nova_for(admin_session),
        'network': conn.network,
    }


@pytest.fixture(scope='module')
def public_assets(clients):
    """Admin-made public image + flavor and an external network, shared by the boot tests."""
    prefix = f'it-{secrets.token_hex(4)}-'

    def name(suffix):
        return prefix + suffix
    glance, nova, net = clients['glance'], clients['nova'], clients['network']
    c = Cleanup()
    try:
        image = glance.images.create(name=name('image'), disk_format='raw',
                                     container_format='bare', visibility='public')
        c.add('image', glance.images.delete, image['id'])
        glance.images.upload(image['id'], io.BytesIO(b'\0' * (1 << 20)))
        wait_for(lambda: glance.images.get(image['id'])['status'] == 'active', 'image active')
        flavor = nova.flavors.create(name('flavor'), ram=256, vcpus=1, disk=1)
        c.add('flavor', nova.flavors.delete, flavor.id)
        # VLAN on physnet "public" (segment allocated from the configured range): any number
        # of external networks can coexist, unlike a flat one
        ext = net.create_network(name=name('ext'), is_router_external=True,
                                 provider_network_type='vlan',
                                 provider_physical_network='public')
        c.add('external network', net.delete_network, ext)
        ext_subnet = net.create_subnet(network_id=ext.id, name=name('ext-subnet'),
                                       ip_version=4, cidr=external_cidr(), is_dhcp_enabled=False)
        yield {'image': image['id'], 'flavor': flavor.id, 'ext': ext, 'ext_subnet': ext_subnet}
    finally:
        c.run()


def build_network_and_boot(nova, net, assets, name, cleanup, capsys, who):
    """Network, subnet, router (external gateway + interface), security group + rules,
    port, keypair, server on the port -> ACTIVE, console host keys, floating IP."""
    network = net.create_network(name=name('net'))
    cleanup.add('network', net.delete_network, network)
    subnet = net.create_subnet(network_id=network.id, name=name('subnet'), ip_version=4,
                               cidr=tenant_cidr())
    cleanup.add('subnet', net.delete_subnet, subnet)
    router = net.create_router(name=name('router'),
                               external_gateway_info={'network_id': assets['ext'].id})
    cleanup.add('router', net.delete_router, router)
    assert router.external_gateway_info['network_id'] == assets['ext'].id
    net.add_interface_to_router(router, subnet.id)
    cleanup.add('router interface', net.remove_interface_from_router, router, subnet.id)

    sg = net.create_security_group(name=name('sg'), description='integration test')
    cleanup.add('security group', net.delete_security_group, sg)
    rules = [
        net.create_security_group_rule(security_group_id=sg.id, direction='ingress',
                                       ethertype='IPv4', protocol='tcp', port_range_min=22,
                                       port_range_max=22, remote_ip_prefix='0.0.0.0/0'),
        net.create_security_group_rule(security_group_id=sg.id, direction='ingress',
                                       ethertype='IPv4', protocol='icmp'),
    ]
    listed = {r.id for r in net.security_group_rules(security_group_id=sg.id)}
    assert {r.id for r in rules} <= listed

    port = net.create_port(network_id=network.id, name=name('port'),
                           security_group_ids=[sg.id])
    cleanup.add('port', net.delete_port, port)

    keypair = nova.keypairs.create(name('key'), public_key=ssh_public_key())
    cleanup.add('keypair', nova.keypairs.delete, keypair.name)

    t0 = time.monotonic()
    server = nova.servers.create(name('server'), image=assets['image'],
                                 flavor=assets['flavor'], nics=[{'port-id': port.id}],
                                 key_name=keypair.name)
    cleanup.add('server', delete_server, nova, server.id)

    def active():
        s = nova.servers.get(server.id)
        assert s.status != 'ERROR', f'server went to ERROR: {getattr(s, "fault", None)}'
        return s if s.status == 'ACTIVE' else None
    server = wait_for(active, f'server {server.id} ACTIVE')
    latency = time.monotonic() - t0
    with capsys.disabled():
        print(f'\n[devcloud smoke] {who}: server with a neutron port ACTIVE in {latency:.2f}s')

    bound = wait_for(lambda: (lambda p: p if p.status == 'ACTIVE' else None)(
        net.get_port(port.id)), f'port {port.id} ACTIVE', timeout=60, interval=0.25)
    assert bound.device_id == server.id
    assert bound.binding_vif_type not in ('binding_failed', 'unbound'), bound.binding_vif_type

    console = server.get_console_output()
    keys = host_keys(console)
    assert '-----BEGIN SSH HOST KEY FINGERPRINTS-----' in console
    assert {k.split()[0] for k in keys} >= {'ssh-ed25519', 'ecdsa-sha2-nistp256'}, keys
    for line in keys:
        ktype, blob, comment = line.split()
        assert base64.b64decode(blob)[4:4 + len(ktype)] == ktype.encode(), line
        assert comment.startswith('root@'), line
    assert host_keys(server.get_console_output()) == keys, 'host keys are not stable'

    fip = net.create_ip(floating_network_id=assets['ext'].id, port_id=port.id,
                        description=name('fip'))
    cleanup.add('floating ip', net.delete_ip, fip)
    assert fip.fixed_ip_address == port.fixed_ips[0]['ip_address']
    assert fip.port_id == port.id
    return server, keys, latency


# ----------------------------------------------------------------------------- tests
def test_identity_crud(clients, admin_cloud_config, unique_name, cleanup):
    ks = clients['keystone']
    types = {s.type for s in ks.services.list()}
    assert {'identity', 'image', 'compute', 'placement', 'network'} <= types, types

    project = ks.projects.create(unique_name('project'), domain='default')
    cleanup.add('project', ks.projects.delete, project)
    user = ks.users.create(unique_name('user'), domain='default', password='it-password',
                           default_project=project)
    cleanup.add('user', ks.users.delete, user)
    role = ks.roles.create(unique_name('role'))
    cleanup.add('role', ks.roles.delete, role)
    member = ks.roles.list(name='member')[0]
    ks.roles.grant(role, user=user, project=project)
    ks.roles.grant(member, user=user, project=project)
    assigned = {a.role['id'] for a in ks.role_assignments.list(user=user, project=project)}
    assert assigned == {role.id, member.id}

    service = ks.services.create(unique_name('svc'), type=unique_name('type'))
    cleanup.add('service', ks.services.delete, service)
    endpoint = ks.endpoints.create(service, 'http://127.0.0.1:1/it', interface='public',
                                   region='RegionOne')
    cleanup.add('endpoint', ks.endpoints.delete, endpoint)
    assert endpoint.id in [e.id for e in ks.endpoints.list(service=service)]

    # the new user really authenticates and its token carries the granted role
    user_session = ks_session.Session(auth=ks_v3.Password(
        auth_url=admin_cloud_config.config['auth']['auth_url'], username=user.name,
        password='it-password', user_domain_id='default', project_id=project.id))
    assert role.name in user_session.auth.get_access(user_session).role_names


def test_image_with_data(clients, unique_name, cleanup):
    glance = clients['glance']
    data = os.urandom(64 * 1024)
    image = glance.images.create(name=unique_name('image'), disk_format='raw',
                                 container_format='bare')
    cleanup.add('image', glance.images.delete, image['id'])
    glance.images.upload(image['id'], io.BytesIO(data))
    image = wait_for(lambda: (lambda i: i if i['status'] == 'active' else None)(
        glance.images.get(image['id'])), 'image active')
    assert image['size'] == len(data)
    assert b''.join(glance.images.data(image['id'])) == data


def test_admin_network_and_server(clients, public_assets, unique_name, cleanup, capsys):
    nova, net = clients['nova'], clients['network']
    assert nova.api_version >= api_versions.APIVersion('2.90'), nova.api_version
    server, keys, _ = build_network_and_boot(nova, net, public_assets, unique_name, cleanup,
                                             capsys, 'admin')
    assert getattr(server, 'OS-EXT-SRV-ATTR:host') == 'devcloud'
    assert server.name in keys[0]  # root@<hostname> follows the server name


def test_demo_user_in_own_project(clients, public_assets, demo_cloud_config, unique_name,
                                  cleanup, capsys):
    dsess = demo_cloud_config.get_session()
    access = dsess.auth.get_access(dsess)
    assert 'admin' not in access.role_names, access.role_names
    dnova = nova_for(dsess)
    dnet = openstack.connection.Connection(config=demo_cloud_config).network
    with pytest.raises(nova_exc.Forbidden):
        dnova.flavors.create(unique_name('forbidden'), ram=64, vcpus=1, disk=0)

    server, keys, _ = build_network_and_boot(dnova, dnet, public_assets, unique_name, cleanup,
                                             capsys, 'demo')
    assert server.tenant_id == dsess.get_project_id()
    admin_nova = clients['nova']
    assert server.id not in [s.id for s in admin_nova.servers.list()]
    assert server.id in [s.id for s in admin_nova.servers.list(search_opts={'all_tenants': 1})]
    assert all(s.tenant_id == server.tenant_id for s in dnova.servers.list())


# ----------------------------------------------------------------------------- block storage
def test_volume_attach_detach(clients, admin_cloud_config, public_assets, unique_name,
                              cleanup, capsys):
    """Cinder through openstacksdk's block-storage proxy on the same session: a volume
    reaches available, attaches to a server of the emulated hypervisor (in-use), is
    extended, detaches and is deleted; one more is made from the public image."""
    conn = openstack.connection.Connection(config=admin_cloud_config)
    bs, nova, net = conn.block_storage, clients['nova'], clients['network']
    types = {s.type for s in clients['keystone'].services.list()}
    assert {'volumev3', 'block-storage'} <= types, types

    def status_of(volume_id, want):
        def check():
            v = bs.get_volume(volume_id)
            assert v.status not in ('error', 'error_extending'), f'volume {volume_id}: {v.status}'
            return v if v.status == want else None
        return wait_for(check, f'volume {volume_id} {want}', interval=0.25)

    t0 = time.monotonic()
    volume = bs.create_volume(name=unique_name('cv-vol'), size=1)
    cleanup.add('volume', lambda: bs.delete_volume(volume.id, ignore_missing=True))
    status_of(volume.id, 'available')
    created = time.monotonic() - t0

    network = net.create_network(name=unique_name('cv-net'))
    cleanup.add('network', net.delete_network, network)
    net.create_subnet(network_id=network.id, ip_version=4, cidr=tenant_cidr())
    server = nova.servers.create(unique_name('cv-server'), image=public_assets['image'],
                                 flavor=public_assets['flavor'], nics=[{'net-id': network.id}])
    cleanup.add('server', delete_server, nova, server.id)
    wait_for(lambda: nova.servers.get(server.id).status == 'ACTIVE', 'server ACTIVE')

    nova.volumes.create_server_volume(server.id, volume.id)
    attached = status_of(volume.id, 'in-use')
    assert [a['server_id'] for a in attached.attachments] == [server.id]
    assert volume.id in [v.volumeId for v in nova.volumes.get_server_volumes(server.id)]
    nova.volumes.delete_server_volume(server.id, volume.id)
    status_of(volume.id, 'available')

    bs.extend_volume(volume.id, 2)
    assert status_of(volume.id, 'available').size == 2
    from_image = bs.create_volume(name=unique_name('cv-vol-img'), size=1,
                                  image_id=public_assets['image'])
    cleanup.add('volume from image',
                lambda: bs.delete_volume(from_image.id, ignore_missing=True))
    assert status_of(from_image.id, 'available').is_bootable

    for v in (volume, from_image):
        bs.delete_volume(v.id)
    for v in (volume, from_image):
        wait_for(lambda v=v: bs.find_volume(v.id) is None, f'volume {v.id} deleted',
                 interval=0.25)
    with capsys.disabled():
        print(f'\n[devcloud smoke] volume available in {created:.2f}s')


def test_glance_metadefs_loaded(clients):
    """Glance's shipped metadata definitions are loaded (a standard deployment has them)."""
    glance = clients['glance']
    resource_types = [r['name'] for r in glance.metadefs_resource_type.list()]
    assert 'OS::Nova::Flavor' in resource_types and 'OS::Glance::Image' in resource_types, \
        resource_types
    namespaces = [n['namespace'] for n in glance.metadefs_namespace.list()]
    assert 'OS::Compute::Hypervisor' in namespaces, namespaces


def test_auto_allocated_topology(clients, unique_name, cleanup):
    """A default external network and subnet pool exist: Neutron allocates a project's
    network, subnet and router on demand (for a new project, then released)."""
    ks, net = clients['keystone'], clients['network']
    project = ks.projects.create(unique_name('cv-auto'), domain='default')
    cleanup.add('project', ks.projects.delete, project)
    dry = net.validate_auto_allocated_topology(project.id)
    assert dry.id == 'dry-run=pass', dry
    topology = net.get_auto_allocated_topology(project.id)
    cleanup.add('topology', net.delete_auto_allocated_topology, project.id)
    allocated = net.get_network(topology.id)
    assert allocated.project_id == project.id
    routers = list(net.routers(project_id=project.id))
    assert len(routers) == 1 and routers[0].external_gateway_info['network_id'] in [
        n.id for n in net.networks(is_router_external=True, is_default=True)]
