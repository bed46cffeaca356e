"""WSGI entry point for every devcloud API: ``devcloud_wsgi:application``.

The module named by ``DEVCLOUD_WSGI_APP`` (``keystone.wsgi.api``, ``glance.wsgi.api``,
``nova.wsgi.osapi_compute``, ``placement.wsgi.api``, ``neutron.wsgi.api``,
``cinder.wsgi.api``) is imported with ``sys.argv`` hidden: the services parse ``sys.argv``
through oslo.config at import time and would die on gunicorn's/uWSGI's own arguments
("unrecognized arguments"). ``DEVCLOUD_WSGI_ARGS`` are what the service sees instead.
"""

import gc
import importlib
import os
import sys

_argv, sys.argv = sys.argv, sys.argv[:1]
# services with no config-file variable of their own (cinder) read their --config-file here
sys.argv += os.environ.get('DEVCLOUD_WSGI_ARGS', '').split()
try:
    application = importlib.import_module(os.environ['DEVCLOUD_WSGI_APP']).application
finally:
    sys.argv = _argv

# What the service built while starting (its modules, config, SQLAlchemy's mappers: most
# of the heap) is never garbage: kept out of the collector's full passes, which otherwise
# scan it again and again while a request allocates (a 1,000-user page of Keystone took
# 0.8 s instead of 0.35 s every other time). The usual tuning of a Python server.
gc.freeze()
