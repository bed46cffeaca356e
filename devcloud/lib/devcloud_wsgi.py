"""WSGI entry point for every devcloud API: ``devcloud_wsgi:application``.

The module named by ``DEVCLOUD_WSGI_APP`` (``keystone.wsgi.api``, ``glance.wsgi.api``,
``nova.wsgi.osapi_compute``, ``placement.wsgi.api``, ``neutron.wsgi.api``) is imported with
``sys.argv`` hidden: the services parse ``sys.argv`` through oslo.config at import time and
would die on gunicorn's/uWSGI's own arguments ("unrecognized arguments").
"""

import importlib
import os
import sys

_argv, sys.argv = sys.argv, sys.argv[:1]
try:
    application = importlib.import_module(os.environ['DEVCLOUD_WSGI_APP']).application
finally:
    sys.argv = _argv
