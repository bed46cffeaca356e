"""Configuration files of every service, rendered from templates/<name>.tmpl.

A template is the file's exact text with ``${name}`` placeholders (string.Template: the
configs hold no ``$`` of their own, and a missing value raises instead of writing a broken
file). Sections shared by several services (service credentials, keystone_authtoken,
oslo_policy) are rendered once here and passed in as values.
"""

from __future__ import annotations

import json
import string

from devcloud_common import LIB, NOVA_HOST, REGION

TEMPLATES = LIB / 'templates'


def render(name, **values):
    """The text of templates/<name>.tmpl with its placeholders filled in."""
    return string.Template((TEMPLATES / f'{name}.tmpl').read_text()).substitute(values)


class ConfigFiles:
    """Writes etc/ and clouds.yaml; unchanged files are left untouched (mixed into Cloud)."""

    # ------------------------------------------------------------------ configuration
    def authsect(self, section, user):
        return (f'[{section}]\nauth_type = password\nauth_url = {self.s.auth_url}\n'
                f'project_name = service\nproject_domain_name = Default\n'
                f'username = {user}\nuser_domain_name = Default\n'
                f'password = {self.s.service_pw}\nregion_name = {REGION}\n')

    def authtoken(self, user):
        return self.authsect('keystone_authtoken', user) + (
            f'www_authenticate_uri = {self.s.url("keystone")}\n'
            'service_token_roles = service\nservice_token_roles_required = true\n')

    def write(self, rel, text):
        p = self.s.etc / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists() or p.read_text() != text:
            p.write_text(text)
        return p

    def write_configs(self):
        s, P = self.s, self.s.ports
        E, D, L, R, V = s.etc, s.data, s.logs, s.run, s.venv
        rabbit_url = f'rabbit://guest:guest@127.0.0.1:{P["rabbit"]}/'
        policy = render('oslo_policy.conf')
        for d in ('nova/lock', 'nova/instances', 'neutron/lock', 'glance/images',
                  'glance/staging', 'glance/tasks', 'glance/cache', 'glance/lock', 'keystone',
                  'home', 'rabbit/home', 'rabbit/mnesia', 'ovn', 'cinder/lock',
                  'cinder/conversion', 'cinder/coordination', 'cinder/volumes'):
            (D / d).mkdir(parents=True, exist_ok=True)
        (L / 'ovn').mkdir(parents=True, exist_ok=True)
        (L / 'rabbit').mkdir(parents=True, exist_ok=True)

        self.write('keystone/keystone.conf', render(
            'keystone.conf', logs=L, data=D, database=s.dburl('keystone'),
            cache_enabled='true' if s.keystone_workers == 1 else 'false'))

        self.write('glance/glance-api-paste.ini',
                   (V / 'etc/glance/glance-api-paste.ini').read_text())
        # the shared sections close the file: appended, so the template ends in a newline
        self.write('glance/glance-api.conf', render(
            'glance-api.conf', logs=L, data=D, etc=E, database=s.dburl('glance'))
            + policy + self.authtoken('glance'))

        self.write('placement/placement.conf', render(
            'placement.conf', logs=L, database=s.dburl('placement'))
            + policy + self.authtoken('placement'))

        self.write('nova/api-paste.ini', (V / 'etc/nova/api-paste.ini').read_text())
        svc_user = self.authsect('service_user', 'nova').split('\n', 1)[1]
        self.write('nova/nova.conf', render(
            'nova.conf', nova_host=NOVA_HOST, data=D, logs=L, etc=E, rabbit_url=rabbit_url,
            api_database=s.dburl('nova_api'), database=s.dburl('nova_cell1'),
            oslo_policy=policy, service_user=svc_user, keystone_authtoken=self.authtoken('nova'),
            placement=self.authsect('placement', 'placement'),
            neutron=self.authsect('neutron', 'neutron'), cinder=self.authsect('cinder', 'nova')))
        self.write('nova/nova-api.conf', render('nova-api.conf'))
        self.write('nova/nova-compute.conf', render('nova-compute.conf'))

        self.write('neutron/api-paste.ini', (V / 'etc/neutron/api-paste.ini').read_text())
        self.write('neutron/neutron.conf', render(
            'neutron.conf', nova_host=NOVA_HOST, logs=L, data=D, etc=E, rabbit_url=rabbit_url,
            database=s.dburl('neutron'), oslo_policy=policy,
            keystone_authtoken=self.authtoken('neutron'), nova=self.authsect('nova', 'nova'),
            placement=self.authsect('placement', 'placement')))
        self.write('neutron/plugins/ml2/ml2_conf.ini', render('ml2_conf.ini', run=R))
        self.write('neutron/uwsgi.ini', render(
            'neutron-uwsgi.ini', port=P['neutron'], venv=V, lib=LIB, etc=E))

        self.write('cinder/api-paste.ini', (V / 'etc/cinder/api-paste.ini').read_text())
        self.write('cinder/cinder.conf', render(
            'cinder.conf', nova_host=NOVA_HOST, logs=L, data=D, etc=E, venv=V,
            rabbit_url=rabbit_url,
            database=s.dburl('cinder'), oslo_policy=policy,
            keystone_authtoken=self.authtoken('cinder'), nova=self.authsect('nova', 'nova'),
            service_user=self.authsect('service_user', 'cinder').split('\n', 1)[1]))

        self.write('mysql/my.cnf', render('my.cnf', data=D, run=R, logs=L))
        self.write('rabbit/rabbitmq.conf', render('rabbitmq.conf', port=P['rabbit']))
        self.write('rabbit/enabled_plugins', render('rabbitmq-enabled_plugins'))
        self.write('devcloud.json', json.dumps(s.as_dict(), indent=1) + '\n')
        self.write_clouds_yaml()

    def write_clouds_yaml(self):
        s = self.s
        # passwords as JSON strings: valid YAML whatever characters they hold
        text = render('clouds.yaml', state=s.state, auth_url=s.auth_url, region=REGION,
                      admin_pw=json.dumps(s.admin_pw), demo_pw=json.dumps(s.demo_pw))
        p = s.state / 'clouds.yaml'
        if not p.exists() or p.read_text() != text:
            p.write_text(text)
            p.chmod(0o600)
