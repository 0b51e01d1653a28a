"""Which targets a call to an alias tries, in which order."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from routing.models import Alias, AliasTarget
from routing.plans import Target, plan, targets_of
from tests.providers.fake_helpers import fake_provider

pytestmark = pytest.mark.django_db


def test_weighted_spread_over_1000_plans_follows_the_weights(fake_upstream):
    a, b, c = (fake_provider(fake_upstream) for _ in range(3))
    group = [Target(a, "m", 1, 60), Target(b, "m", 1, 30), Target(c, "m", 1, 10)]
    backup = Target(a, "backup", 2, 1)
    rng = random.Random(17)
    firsts: Counter[str] = Counter()
    for _ in range(1000):
        order = plan([backup, *group], rng)
        # Every target once; the whole first group before the second.
        assert sorted(t.label for t in order[:3]) == sorted(t.label for t in group)
        assert order[3] == backup
        firsts[order[0].provider.name] += 1
    assert abs(firsts[a.name] - 600) <= 40
    assert abs(firsts[b.name] - 300) <= 40
    assert abs(firsts[c.name] - 100) <= 30


def test_the_fallbacks_of_a_group_follow_by_weight_too(fake_upstream):
    a, b, c = (fake_provider(fake_upstream) for _ in range(3))
    group = [Target(a, "m", 1, 60), Target(b, "m", 1, 30), Target(c, "m", 1, 10)]
    rng = random.Random(5)
    seconds = Counter(plan(group, rng)[1].provider.name for _ in range(1000))
    # b is second after a (60%, then 30 of 40) or after c (10%, then 30 of 90): 48.3%.
    assert abs(seconds[b.name] - 483) <= 40


def test_targets_of_leaves_out_inactive_providers_and_orders_groups(fake_upstream):
    on, off = fake_provider(fake_upstream), fake_provider(fake_upstream, is_active=False)
    alias = Alias.objects.create(name="smart")
    AliasTarget.objects.create(alias=alias, priority=2, provider=on, model="later")
    AliasTarget.objects.create(alias=alias, priority=1, provider=off, model="skipped")
    AliasTarget.objects.create(alias=alias, priority=1, provider=on, model="first")
    assert [t.model for t in targets_of(alias)] == ["first", "later"]
