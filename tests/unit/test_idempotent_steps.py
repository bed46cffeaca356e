"""Steps that complete a create count a retry's "already there" as done: the answer of
the first attempt was lost, the cloud did it."""

from types import SimpleNamespace

import pytest

from bootstrap.drivers.routers import RouterDriver
from bootstrap.drivers.security_groups import SecurityGroupDriver
from bootstrap.errors import CloudError
from bootstrap.plan import Observed, SetDelta


class Refused(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status_code, self.message = status, message


def test_router_interface_already_there_is_done():
    def add(router_id, subnet):
        raise Refused(400, f"Bad router request: Router already has a port on subnet {subnet}.")

    cloud = SimpleNamespace(network=SimpleNamespace(add_interface_to_router=add))
    obs = Observed("r1", {"name": "r"})
    RouterDriver().change_set(cloud, obs, "interfaces", SetDelta(add=("s1",)))


def test_router_interface_overlapping_itself_is_done():
    def add(router_id, subnet):
        raise Refused(
            400,
            f"Bad router request: Cidr 10.1.2.0/24 of subnet {subnet} overlaps with cidr "
            f"10.1.2.0/24 of subnet {subnet}.",
        )

    cloud = SimpleNamespace(network=SimpleNamespace(add_interface_to_router=add))
    RouterDriver().change_set(
        cloud, Observed("r1", {"name": "r"}), "interfaces", SetDelta(add=("s-1",))
    )


def test_other_router_refusals_still_fail():
    def add(router_id, subnet):
        raise Refused(400, "Bad router request: subnet has no gateway")

    cloud = SimpleNamespace(network=SimpleNamespace(add_interface_to_router=add))
    with pytest.raises(Refused):
        RouterDriver().change_set(
            cloud, Observed("r1", {"name": "r"}), "interfaces", SetDelta(add=("s1",))
        )


def test_rules_made_by_a_lost_bulk_post_are_done():
    made = []

    def bulk(rules):
        raise Refused(409, "Security group rule already exists. Rule id is x.")

    def one(**rule):
        if rule["direction"] == "ingress":
            raise Refused(409, "Security group rule already exists. Rule id is y.")
        made.append(rule)
        return rule

    cloud = SimpleNamespace(
        network=SimpleNamespace(create_security_group_rules=bulk, create_security_group_rule=one)
    )
    rules = ({"direction": "ingress"}, {"direction": "egress"})
    SecurityGroupDriver().change_set(
        cloud, Observed("g1", {"name": "g"}), "rules", SetDelta(add=rules)
    )
    assert made == [{"direction": "egress"}]


def test_quota_refusal_of_rules_is_not_taken_for_done():
    def bulk(rules):
        raise Refused(409, "Quota exceeded for resources: ['security_group_rule'].")

    cloud = SimpleNamespace(network=SimpleNamespace(create_security_group_rules=bulk))
    with pytest.raises(Refused) as info:
        SecurityGroupDriver().change_set(
            cloud, Observed("g1", {"name": "g"}), "rules", SetDelta(add=({"a": 1},))
        )
    assert not isinstance(info.value, CloudError)
