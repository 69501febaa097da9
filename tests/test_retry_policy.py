"""Retry policies: the delays their ``next`` gives, how the parts compose, and the engine helper."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timedelta, timezone

import pytest

from workflows.retry_policy import (
    ConstantDelayRetryPolicy,
    ExponentialBackoffRetryPolicy,
    RetryCondition,
    RetryInfo,
    RetryPolicy,
    StopCondition,
    WaitStrategy,
    next_delay,
    retry_all,
    retry_always,
    retry_any,
    retry_if_exception,
    retry_if_exception_cause_type,
    retry_if_exception_message,
    retry_if_exception_type,
    retry_if_not_exception_message,
    retry_if_not_exception_type,
    retry_never,
    retry_policy,
    retry_unless_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_all,
    stop_any,
    stop_before_delay,
    stop_never,
    wait_chain,
    wait_combine,
    wait_exponential,
    wait_exponential_jitter,
    wait_fixed,
    wait_full_jitter,
    wait_incrementing,
    wait_none,
    wait_random,
    wait_random_exponential,
)


def delays(policy: RetryPolicy, attempts: int, error: Exception | None = None) -> list[float | None]:
    error = error or ValueError("boom")
    return [policy.next(0.0, n, error) for n in range(1, attempts + 1)]


# --------------------------------------------------------------------------- retry_policy


def test_default_policy_allows_three_attempts_five_seconds_apart() -> None:
    assert delays(retry_policy(), 3) == [5.0, 5.0, None]


def test_exponential_wait_is_capped_at_max() -> None:
    policy = retry_policy(wait=wait_exponential(multiplier=1, exp_base=2, max=5), stop=stop_after_attempt(6))
    assert delays(policy, 6) == [1, 2, 4, 5, 5, None]


def test_retry_condition_that_rejects_the_error_stops_at_once() -> None:
    policy = retry_policy(retry=retry_if_exception_type(KeyError))
    assert policy.next(0.0, 1, ValueError("x")) is None
    assert policy.next(0.0, 1, KeyError("x")) == 5.0


def test_plain_function_works_as_retry_condition() -> None:
    policy = retry_policy(retry=lambda error: "again" in str(error), wait=wait_fixed(1))
    assert policy.next(0.0, 1, ValueError("try again")) == 1.0
    assert policy.next(0.0, 1, ValueError("fatal")) is None


def test_stop_sees_the_upcoming_sleep() -> None:
    policy = retry_policy(wait=wait_fixed(4), stop=stop_before_delay(10))
    assert policy.next(5.0, 1, ValueError()) == 4.0
    assert policy.next(6.0, 2, ValueError()) is None


def test_wait_strategy_counts_retries_from_zero() -> None:
    seen: list[int] = []

    def recording_wait(attempt: int, *, seed: int | None = None) -> float:
        seen.append(attempt)
        return 0.0

    policy = retry_policy(wait=recording_wait, stop=stop_never())
    delays(policy, 3)
    assert seen == [0, 1, 2]


def test_policy_objects_satisfy_the_protocol_with_or_without_seed() -> None:
    class OldStyle:
        def next(self, elapsed_time: float, attempts: int, error: Exception) -> float | None:
            return 5 if attempts < 2 else None

    assert isinstance(retry_policy(), RetryPolicy)
    assert isinstance(OldStyle(), RetryPolicy)
    assert not isinstance(object(), RetryPolicy)


def test_retry_policy_rejects_parts_that_are_not_callable() -> None:
    with pytest.raises(TypeError, match="wait_fixed"):
        retry_policy(wait=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="stop_after_attempt"):
        retry_policy(stop=3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- deprecated factories


def test_constant_delay_policy_warns_and_behaves_like_retry_policy() -> None:
    with pytest.warns(DeprecationWarning, match="ConstantDelayRetryPolicy"):
        policy = ConstantDelayRetryPolicy(maximum_attempts=4, delay=2)
    assert delays(policy, 4) == [2.0, 2.0, 2.0, None]


def test_exponential_backoff_policy_without_jitter() -> None:
    with pytest.warns(DeprecationWarning, match="ExponentialBackoffRetryPolicy"):
        policy = ExponentialBackoffRetryPolicy(
            maximum_attempts=4, initial_delay=1, multiplier=2, max_delay=3, jitter=False
        )
    assert delays(policy, 4) == [1, 2, 3, None]


def test_exponential_backoff_policy_with_jitter_stays_under_the_backoff() -> None:
    with pytest.warns(DeprecationWarning):
        policy = ExponentialBackoffRetryPolicy(maximum_attempts=4, initial_delay=1, multiplier=2, max_delay=3)
    got = delays(policy, 4)
    assert got[3] is None
    for delay, ceiling in zip(got[:3], [1, 2, 3]):
        assert delay is not None and 0 <= delay <= ceiling


def test_deprecated_factories_are_functions_not_classes() -> None:
    assert not isinstance(ConstantDelayRetryPolicy, type)
    assert not isinstance(ExponentialBackoffRetryPolicy, type)


# --------------------------------------------------------------------------- retry conditions


def test_exception_type_conditions() -> None:
    assert retry_if_exception_type((KeyError, IndexError))(IndexError())
    assert not retry_if_exception_type(KeyError)(ValueError())
    assert retry_if_not_exception_type(KeyError)(ValueError())
    assert not retry_if_not_exception_type(KeyError)(KeyError())
    assert issubclass(retry_unless_exception_type, retry_if_not_exception_type)  # a class of its own, as upstream
    assert not retry_unless_exception_type(KeyError)(KeyError()) and retry_unless_exception_type(KeyError)(ValueError())
    assert retry_if_exception_type()(RuntimeError())


def test_exception_message_exact_and_regex() -> None:
    assert retry_if_exception_message(message="busy")(ValueError("busy"))
    assert not retry_if_exception_message(message="busy")(ValueError("very busy"))
    assert retry_if_exception_message(match=r"rate.limit")(ValueError("hit rate-limit, slow down"))
    assert not retry_if_not_exception_message(match="rate")(ValueError("rate"))
    assert retry_if_not_exception_message(message="busy")(ValueError("other"))


@pytest.mark.parametrize("kwargs", [{}, {"message": "a", "match": "a"}])
def test_exception_message_needs_exactly_one_of_message_or_match(kwargs: dict[str, str]) -> None:
    with pytest.raises(TypeError, match="exactly one"):
        retry_if_exception_message(**kwargs)


def test_cause_type_walks_the_cause_chain_but_not_the_error_itself() -> None:
    condition = retry_if_exception_cause_type(ConnectionError)
    root = ConnectionError("down")
    middle = RuntimeError("wrapped")
    middle.__cause__ = root
    outer = ValueError("outer")
    outer.__cause__ = middle
    assert condition(outer)
    assert not condition(ConnectionError("itself"))
    context_only = ValueError("during handling")
    context_only.__context__ = root
    assert not condition(context_only)


def test_conditions_compose_with_or_and_and() -> None:
    is_key = retry_if_exception_type(KeyError)
    says_busy = retry_if_exception_message(match="busy")
    either = is_key | says_busy
    both = is_key & says_busy
    assert isinstance(either, retry_any) and isinstance(both, retry_all)
    assert either(ValueError("busy")) and either(KeyError("x"))
    assert not either(ValueError("x"))
    assert both(KeyError("busy")) and not both(KeyError("x"))


def test_predicate_always_never_and_protocol() -> None:
    assert retry_if_exception(lambda e: isinstance(e, OSError))(FileNotFoundError())
    assert retry_always()(ValueError()) and not retry_never()(ValueError())
    assert retry_any()(ValueError()) is False and retry_all()(ValueError()) is True
    assert isinstance(retry_always(), RetryCondition)


# --------------------------------------------------------------------------- waits


def test_fixed_none_and_timedelta_values() -> None:
    assert wait_fixed(timedelta(seconds=1.5))(7) == 1.5
    assert wait_none()(3) == 0.0
    assert wait_exponential(multiplier=timedelta(milliseconds=500), max=timedelta(seconds=1))(0) == 0.5
    assert isinstance(wait_fixed(1), WaitStrategy)


def test_exponential_respects_min_and_survives_huge_attempt_numbers() -> None:
    wait = wait_exponential(multiplier=1, exp_base=2, min=3, max=60)
    assert [wait(n) for n in range(3)] == [3, 3, 4]
    assert wait(10_000) == 60


def test_incrementing_is_capped_and_never_negative() -> None:
    assert [wait_incrementing(start=1, increment=2, max=4)(n) for n in range(4)] == [1, 3, 4, 4]
    assert wait_incrementing(start=1, increment=-5)(3) == 0


def test_random_waits_stay_in_range() -> None:
    for n in range(20):
        assert 2 <= wait_random(2, 3)(n) <= 3
        assert 0 <= wait_random_exponential(multiplier=1, max=4)(n) <= min(2**n, 4)
        assert 2**min(n, 5) <= wait_exponential_jitter(initial=1, max=100, jitter=1)(n) <= min(2**n, 100) + 1
    assert wait_exponential_jitter(initial=1, max=5, jitter=3)(10) == 5


def test_seeded_random_waits_are_reproducible() -> None:
    strategies: list[WaitStrategy] = [
        wait_random(0, 10),
        wait_random_exponential(max=100),
        wait_exponential_jitter(jitter=5),
        wait_full_jitter(max=100),
    ]
    for wait in strategies:
        assert [wait(n, seed=42) for n in range(5)] == [wait(n, seed=42) for n in range(5)]
    assert wait_random(0, 10)(0, seed=1) != wait_random(0, 10)(0, seed=2)


def test_full_jitter_is_random_exponential() -> None:
    assert isinstance(wait_full_jitter(), wait_random_exponential)


def test_chain_uses_the_last_strategy_once_exhausted() -> None:
    wait = wait_chain(wait_fixed(1), wait_fixed(2), wait_fixed(3))
    assert [wait(n) for n in range(5)] == [1, 2, 3, 3, 3]
    with pytest.raises(ValueError, match="wait_chain requires at least one strategy"):
        wait_chain()


def test_waits_add_up_with_plus_sum_and_combine() -> None:
    assert (wait_fixed(1) + wait_fixed(2))(0) == 3
    assert sum([wait_fixed(1), wait_fixed(2), wait_incrementing(start=0, increment=1)])(4) == 7  # type: ignore[operator]
    assert wait_combine(wait_fixed(1), wait_exponential())(2) == 5
    assert wait_combine(wait_random(0, 1), wait_fixed(1))(0, seed=3) == wait_combine(
        wait_random(0, 1), wait_fixed(1)
    )(0, seed=3)


def test_seed_flows_through_the_policy_to_its_wait() -> None:
    policy = retry_policy(wait=wait_random(0, 100), stop=stop_never())
    assert policy.next(0.0, 1, ValueError(), seed=7) == policy.next(0.0, 1, ValueError(), seed=7)


# --------------------------------------------------------------------------- stops


def test_stop_conditions() -> None:
    assert stop_after_attempt(3)(3, 0.0) and not stop_after_attempt(3)(2, 0.0)
    assert stop_after_delay(timedelta(seconds=10))(1, 10.0) and not stop_after_delay(10)(1, 9.9)
    assert stop_before_delay(10)(1, 8.0, upcoming_sleep=2.0)
    assert not stop_before_delay(10)(1, 8.0, upcoming_sleep=1.0)
    assert not stop_never()(10**6, math.inf)
    assert isinstance(stop_never(), StopCondition)


def test_stops_compose_with_or_and_and() -> None:
    either = stop_after_attempt(5) | stop_after_delay(10)
    both = stop_after_attempt(5) & stop_after_delay(10)
    assert isinstance(either, stop_any) and isinstance(both, stop_all)
    assert either(5, 0.0) and either(1, 10.0) and not either(1, 0.0)
    assert both(5, 10.0) and not both(5, 0.0)


# --------------------------------------------------------------------------- RetryInfo


def test_retry_info_is_frozen_and_starts_at_the_first_attempt() -> None:
    info = RetryInfo()
    assert (info.retry_number, info.elapsed_seconds, info.last_exception, info.last_failed_at) == (0, 0.0, None, None)
    later = RetryInfo(1, 0.5, ValueError("fail 0"), datetime.now(timezone.utc))
    with pytest.raises(dataclasses.FrozenInstanceError):
        later.retry_number = 2  # type: ignore[misc]


# --------------------------------------------------------------------------- next_delay


def test_next_delay_passes_seed_only_to_policies_that_take_it() -> None:
    calls: list[tuple[object, ...]] = []

    class OldStyle:
        def next(self, elapsed_time: float, attempts: int, error: Exception) -> float | None:
            calls.append((elapsed_time, attempts))
            return 5 if attempts < 2 else None

    class NewStyle:
        def next(self, elapsed_time: float, attempts: int, error: Exception, *, seed: int | None = None) -> float:
            calls.append(("seed", seed))
            return 1.0

    class TakesKwargs:
        def next(self, elapsed_time: float, attempts: int, error: Exception, **options: object) -> float:
            calls.append(("kwargs", options))
            return 2.0

    assert next_delay(OldStyle(), 0.1, 1, ValueError(), seed=3) == 5.0
    assert next_delay(OldStyle(), 0.2, 2, ValueError(), seed=3) is None
    assert next_delay(NewStyle(), 0.0, 1, ValueError(), seed=3) == 1.0
    assert next_delay(TakesKwargs(), 0.0, 1, ValueError(), seed=4) == 2.0
    assert calls == [(0.1, 1), (0.2, 2), ("seed", 3), ("kwargs", {"seed": 4})]


def test_next_delay_works_with_a_next_attribute_on_an_instance() -> None:
    class Holder:
        pass

    policy = Holder()
    policy.next = lambda elapsed_time, attempts, error: 0.25  # type: ignore[attr-defined]
    assert next_delay(policy, 0.0, 1, ValueError(), seed=1) == 0.25  # type: ignore[arg-type]


def test_next_delay_reraises_policy_errors_caused_by_the_step_error() -> None:
    class Broken:
        def next(self, elapsed_time: float, attempts: int, error: Exception) -> float | None:
            raise RuntimeError("policy bug")

    step_error = ValueError("step failed")
    with pytest.raises(RuntimeError, match="policy bug") as caught:
        next_delay(Broken(), 0.0, 1, step_error)
    assert caught.value.__cause__ is step_error


def test_next_delay_rejects_a_non_numeric_delay_and_clamps_negatives() -> None:
    class Wrong:
        def next(self, elapsed_time: float, attempts: int, error: Exception) -> object:
            return "5"

    class Negative:
        def next(self, elapsed_time: float, attempts: int, error: Exception) -> float:
            return -1.0

    with pytest.raises(TypeError, match="must return a delay in seconds"):
        next_delay(Wrong(), 0.0, 1, ValueError())  # type: ignore[arg-type]
    assert next_delay(Negative(), 0.0, 1, ValueError()) == 0.0


def test_next_delay_with_the_builtin_policy() -> None:
    policy = retry_policy(wait=wait_random(0, 1), stop=stop_after_attempt(2))
    first = next_delay(policy, 0.0, 1, ValueError(), seed=11)
    assert first is not None and first == next_delay(policy, 0.0, 1, ValueError(), seed=11)
    assert next_delay(policy, 0.0, 2, ValueError(), seed=11) is None


# --- issue 26: the reference's defaults, delays and type names (llama-index-workflows 2.26.1) ---


def test_deprecated_constant_and_exponential_policies_give_the_reference_delays() -> None:
    import random
    import warnings

    from workflows import retry_policy as rp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        constant = rp.ConstantDelayRetryPolicy()
        short = rp.ConstantDelayRetryPolicy(maximum_attempts=3, delay=2)
        exponential = rp.ExponentialBackoffRetryPolicy(
            initial_delay=1, multiplier=3, max_delay=5, maximum_attempts=4, jitter=False
        )
        jittered = rp.ExponentialBackoffRetryPolicy()
    error = ValueError("x")
    assert [constant.next(1.0, a, error) for a in range(6)] == [5.0, 5.0, 5.0, None, None, None]
    assert [short.next(1.0, a, error) for a in range(6)] == [2.0, 2.0, 2.0, None, None, None]
    assert [exponential.next(1.0, a, error) for a in range(6)] == [1.0, 1.0, 3.0, 5.0, None, None]
    # Unseeded jitter draws from the random module, as upstream: random.seed makes it repeatable
    # (these are the reference's values for seed 1).
    random.seed(1)
    delays = [jittered.next(1.0, a, error) for a in range(6)]
    assert [None if d is None else round(d, 4) for d in delays] == [0.1344, 0.8474, 1.5275, 1.0203, 3.9635, None]
    assert type(constant).__name__ == type(rp.retry_policy()).__name__ == "_ComposableRetryPolicy"


def test_composed_building_blocks_keep_the_reference_type_names() -> None:
    from workflows import retry_policy as rp

    assert type(rp.retry_if_exception_type(KeyError) | rp.retry_if_exception_message(match="x")).__name__ == "retry_any"
    assert type(rp.retry_if_exception_type(KeyError) & rp.retry_always).__name__ == "retry_all"
    assert type(rp.wait_fixed(1) + rp.wait_random(0, 1)).__name__ == "wait_combine"
    assert type(rp.stop_after_attempt(1) | rp.stop_after_delay(3)).__name__ == "stop_any"
    assert type(rp.stop_after_attempt(1) & rp.stop_after_delay(3)).__name__ == "stop_all"
    assert type(rp.retry_unless_exception_type(KeyError)).__name__ == "retry_unless_exception_type"
    policy = rp._ComposableRetryPolicy()  # the reference's defaults: every error, 5 s apart, 3 attempts
    assert [policy.next(0.0, a, ValueError()) for a in range(1, 5)] == [5.0, 5.0, None, None]
