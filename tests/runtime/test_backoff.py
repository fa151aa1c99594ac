"""The one backoff: grows, is capped, is jittered within its range, and draws from its own
generator so a seed reproduces it and nothing else disturbs it."""

from __future__ import annotations

import random

import pytest

from treadmilld.runtime.backoff import Backoff


def backoff(seed: int = 7, jitter: tuple[float, float] = (0.8, 1.2)) -> Backoff:
    return Backoff(
        initial_s=1.0, maximum_s=10.0, multiplier=2.0, jitter=jitter, rng=random.Random(seed)
    )


def test_delays_double_up_to_the_cap_and_never_exceed_it() -> None:
    exact = backoff(jitter=(1.0, 1.0))
    assert [exact.next_delay() for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    jittered = backoff()
    for base in [1, 2, 4, 8, 10, 10, 10, 10]:
        delay = jittered.next_delay()
        assert base * 0.8 <= delay <= min(10.0, base * 1.2)
    # Capped after the jitter too: at the cap, half the draws would be above it otherwise.
    assert max(backoff(seed).delay(20) for seed in range(50)) == 10.0


def test_jitter_spreads_the_delays_over_its_whole_range() -> None:
    drawn = [backoff(seed).delay(0) for seed in range(200)]
    assert min(drawn) >= 0.8
    assert max(drawn) <= 1.2
    # Spread, not a constant: both ends of the range are reached roughly.
    assert min(drawn) < 0.85
    assert max(drawn) > 1.15


def test_the_same_seed_gives_the_same_delays() -> None:
    first, second = backoff(seed=42), backoff(seed=42)
    assert [first.next_delay() for _ in range(10)] == [second.next_delay() for _ in range(10)]
    assert [backoff(seed=1).delay(0) for _ in range(3)] != [backoff(seed=2).delay(0)] * 3


def test_the_global_random_generator_neither_feeds_nor_disturbs_it() -> None:
    random.seed(1)
    reference = backoff(seed=3)
    expected = [reference.delay(n) for n in range(5)]
    random.seed(999)
    drawn = backoff(seed=3)
    values = []
    for n in range(5):
        random.random()  # someone else drawing from the global generator in between
        values.append(drawn.delay(n))
    assert values == expected


def test_instances_without_a_generator_get_their_own_not_the_global_one() -> None:
    # Were it drawing from the global generator, the same global seed would repeat the delays.
    random.seed(5)
    one = Backoff(initial_s=1.0, maximum_s=10.0, jitter=(0.5, 1.5))
    first = [one.delay(0) for _ in range(5)]
    random.seed(5)
    other = Backoff(initial_s=1.0, maximum_s=10.0, jitter=(0.5, 1.5))
    assert [other.delay(0) for _ in range(5)] != first


def test_reset_starts_again_from_the_initial_delay() -> None:
    exact = backoff(jitter=(1.0, 1.0))
    for _ in range(5):
        exact.next_delay()
    assert exact.failures == 4  # stopped counting at the cap
    exact.reset()
    assert exact.failures == 0
    assert exact.next_delay() == 1.0


def test_a_week_of_failures_stays_at_the_cap() -> None:
    steep = Backoff(initial_s=1.0, maximum_s=30.0, multiplier=1000.0)
    for _ in range(100_000):
        delay = steep.next_delay()
    assert delay == 30.0
    assert steep.delay(10**9) == 30.0


def test_nonsense_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="initial_s <= maximum_s"):
        Backoff(initial_s=5.0, maximum_s=1.0)
    with pytest.raises(ValueError, match="multiplier"):
        Backoff(initial_s=1.0, maximum_s=5.0, multiplier=0.5)
    with pytest.raises(ValueError, match="jitter"):
        Backoff(initial_s=1.0, maximum_s=5.0, jitter=(1.2, 0.8))
