"""Keystone closes pooled connections idle for ~2 s: reads spaced past that, on one
session, never fail, and every attempt is counted (the cloud is only read here)."""

from __future__ import annotations

import time

from bootstrap.retry import with_retries
from tests.integration.engine_util import connect


def test_reads_spaced_past_keystones_idle_timeout_do_not_fail():
    cloud = connect()
    cloud.authenticate()
    ks = cloud.keystone
    before = cloud.counter.snapshot().get("GET", 0)
    for _ in range(4):
        found = with_retries(
            lambda: ks.projects.list(name="pf-no-such-project"), policy=cloud.retry
        )
        assert list(found) == []
        time.sleep(2.5)  # past Keystone's idle timeout: the pooled connection is closed
    gets = cloud.counter.snapshot().get("GET", 0) - before
    # Four reads answered; a retried stale attempt, if the close raced one, counts too.
    assert 4 <= gets <= 8
