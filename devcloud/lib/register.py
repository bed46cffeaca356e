"""Idempotently populate keystone for devcloud (run by ``devcloud/up`` with the cloud's venv).

* project ``service`` + users nova/placement/neutron/glance/cinder with roles admin + service
* catalog: identity (made by ``keystone-manage bootstrap``), image, compute, placement,
  network, volumev3 + block-storage; public + internal endpoints in the region
* non-admin project/user ``demo`` with roles member + reader

Input (environment): DEVCLOUD_REGISTER = JSON {"auth_url", "region", "catalog":
[[name, type, url, description], ...]}, DEVCLOUD_ADMIN_PASSWORD, DEVCLOUD_SERVICE_PASSWORD,
DEVCLOUD_DEMO_PASSWORD.
"""

import json
import os

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client as ks_client

CFG = json.loads(os.environ['DEVCLOUD_REGISTER'])
ADMIN_PW = os.environ['DEVCLOUD_ADMIN_PASSWORD']
SERVICE_PW = os.environ['DEVCLOUD_SERVICE_PASSWORD']
DEMO_PW = os.environ['DEVCLOUD_DEMO_PASSWORD']
REGION = CFG['region']
SERVICE_USERS = ('nova', 'placement', 'neutron', 'glance', 'cinder')

auth = v3.Password(auth_url=CFG['auth_url'], username='admin', password=ADMIN_PW,
                   project_name='admin', user_domain_id='default',
                   project_domain_id='default')
sess = ks_session.Session(auth=auth, timeout=60)
ks = ks_client.Client(session=sess, interface='public')


def first(items):
    return items[0] if items else None


def role(name):
    return first(ks.roles.list(name=name)) or ks.roles.create(name)


def project(name, desc):
    return first(ks.projects.list(name=name, domain='default')) or \
        ks.projects.create(name, domain='default', description=desc)


def user(name, pw, proj):
    u = first(ks.users.list(name=name, domain='default'))
    if u is None:
        return ks.users.create(name, domain='default', password=pw, default_project=proj)
    ks.users.update(u, password=pw)  # keep in sync with the configs
    return u


service = project('service', 'Service project')
roles = {r: role(r) for r in ('admin', 'service', 'member', 'reader')}
for name in SERVICE_USERS:
    u = user(name, SERVICE_PW, service)
    for r in ('admin', 'service'):
        ks.roles.grant(roles[r], user=u, project=service)  # PUT: idempotent

for name, stype, url, desc in CFG['catalog']:
    svc = first(ks.services.list(type=stype)) or \
        ks.services.create(name, type=stype, description=desc)
    existing = {e.interface: e for e in ks.endpoints.list(service=svc, region=REGION)}
    for iface in ('public', 'internal'):
        ep = existing.get(iface)
        if ep is None:
            ks.endpoints.create(svc, url, interface=iface, region=REGION)
        elif ep.url != url:
            ks.endpoints.update(ep, url=url)

demo = project('demo', 'non-admin demo project')
du = user('demo', DEMO_PW, demo)
for r in ('member', 'reader'):
    ks.roles.grant(roles[r], user=du, project=demo)
types = ','.join(c[1] for c in CFG['catalog'])
print(f'keystone registered: service project {service.id}, users {",".join(SERVICE_USERS)}, '
      f'catalog {types}, demo project {demo.id}')
