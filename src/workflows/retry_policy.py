"""Retry policies for steps: when to retry a failed step, and how long to wait first.

A policy is any object with ``next(elapsed_time, attempts, error, *, seed=None)`` returning a
delay in seconds or ``None`` to give up. :func:`retry_policy` builds one from three composable
parts, in the style of tenacity:

* a retry condition (``retry_if_exception_type(KeyError) | retry_if_exception_message(match="busy")``),
* a wait strategy (``wait_exponential(max=10) + wait_random(0, 1)``),
* a stop condition (``stop_after_attempt(5) | stop_after_delay(60)``).

The runtime does not call ``policy.next`` directly but :func:`next_delay`, which copes with
old-style policies whose ``next`` takes no ``seed`` and with policies that raise.
"""

from __future__ import annotations

import functools
import inspect
import math
import random
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast, runtime_checkable

TimeValue = float | int | timedelta
ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]


def _seconds(value: TimeValue) -> float:
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def _rng(seed: int | None) -> Any:
    # A seed makes the draw reproducible: the same seed and attempt always give the same delay.
    # Unseeded draws come from the random module's global generator, as in LlamaIndex
    # Workflows, so random.seed(...) makes a test's delays repeatable.
    return random if seed is None else random.Random(seed)


def _power(base: float, exponent: int) -> float:
    try:
        return float(base**exponent)
    except OverflowError:
        return math.inf


# --------------------------------------------------------------------------- protocols


@runtime_checkable
class RetryPolicy(Protocol):
    """Decides, after a step attempt failed, whether and when to try again.

    ``attempts`` counts failures so far (1 after the first one), ``elapsed_time`` is the seconds
    since the first attempt started. Return the delay before the next attempt, or ``None`` to
    stop retrying. Policies whose ``next`` has no ``seed`` parameter are accepted too.
    """

    def next(
        self, elapsed_time: float, attempts: int, error: Exception, *, seed: int | None = None
    ) -> float | None: ...


class LegacyRetryPolicy(Protocol):
    """A policy written before ``seed`` existed; the engine still accepts it (see :func:`next_delay`)."""

    def next(self, elapsed_time: float, attempts: int, error: Exception) -> float | None: ...


@runtime_checkable
class RetryCondition(Protocol):
    """Says whether a step error is worth retrying."""

    def __call__(self, error: Exception) -> bool: ...


@runtime_checkable
class WaitStrategy(Protocol):
    """Gives the delay before retry number ``attempts`` (counted from 0: the policy passes failures - 1)."""

    def __call__(self, attempts: int, *, seed: int | None = None) -> float: ...


@runtime_checkable
class StopCondition(Protocol):
    """Says whether to give up, given the failures so far and the time spent."""

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool: ...


@dataclass(frozen=True)
class RetryInfo:
    """What a step can learn about its own retries through ``ctx.retry_info()``.

    ``retry_number`` is 0 on the first attempt; ``last_failed_at`` is in UTC.
    """

    retry_number: int = 0
    elapsed_seconds: float = 0.0
    last_exception: Exception | None = None
    last_failed_at: datetime | None = None


# --------------------------------------------------------------------------- retry conditions


class _RetryConditionBase:
    """Gives retry conditions ``|`` (either one) and ``&`` (both)."""

    def __call__(self, error: Exception) -> bool:
        raise NotImplementedError

    def __or__(self, other: RetryCondition) -> retry_any:
        return retry_any(self, other)

    def __ror__(self, other: RetryCondition) -> retry_any:
        return retry_any(other, self)

    def __and__(self, other: RetryCondition) -> retry_all:
        return retry_all(self, other)

    def __rand__(self, other: RetryCondition) -> retry_all:
        return retry_all(other, self)


class retry_if_exception(_RetryConditionBase):
    """Retry when ``predicate(error)`` is true."""

    def __init__(self, predicate: Callable[[Exception], bool]) -> None:
        self.predicate = predicate

    def __call__(self, error: Exception) -> bool:
        return bool(self.predicate(error))


class retry_if_exception_type(_RetryConditionBase):
    """Retry when the error is an instance of ``exception_types`` (a class or a tuple of classes)."""

    def __init__(self, exception_types: ExceptionTypes = Exception) -> None:
        self.exception_types = exception_types

    def __call__(self, error: Exception) -> bool:
        return isinstance(error, self.exception_types)


class retry_if_not_exception_type(_RetryConditionBase):
    """Retry unless the error is an instance of ``exception_types``."""

    def __init__(self, exception_types: ExceptionTypes = Exception) -> None:
        self.exception_types = exception_types

    def __call__(self, error: Exception) -> bool:
        return not isinstance(error, self.exception_types)


class retry_unless_exception_type(retry_if_not_exception_type):
    """Retry unless the error is an instance of one of the types (tenacity's name for
    ``retry_if_not_exception_type``; a class of its own, as in LlamaIndex Workflows)."""


class retry_if_exception_message(_RetryConditionBase):
    """Retry when ``str(error)`` equals ``message``, or when ``re.search(match, str(error))`` finds something.

    Exactly one of ``message`` and ``match`` must be given.
    """

    def __init__(self, message: str | None = None, match: str | re.Pattern[str] | None = None) -> None:
        if (message is None) == (match is None):
            raise TypeError(
                f"{type(self).__name__} takes exactly one of 'message' (exact text) or 'match' (regular expression)"
            )
        self.message = message
        self.pattern = re.compile(match) if match is not None else None

    def __call__(self, error: Exception) -> bool:
        if self.pattern is not None:
            return self.pattern.search(str(error)) is not None
        return str(error) == self.message


class retry_if_not_exception_message(retry_if_exception_message):
    """Retry unless the error message matches (same arguments as ``retry_if_exception_message``)."""

    def __call__(self, error: Exception) -> bool:
        return not super().__call__(error)


class retry_if_exception_cause_type(_RetryConditionBase):
    """Retry when some exception in the error's ``__cause__`` chain (not the error itself) is one of ``exception_types``."""

    def __init__(self, exception_types: ExceptionTypes = Exception) -> None:
        self.exception_types = exception_types

    def __call__(self, error: Exception) -> bool:
        cause = error.__cause__
        while cause is not None:
            if isinstance(cause, self.exception_types):
                return True
            cause = cause.__cause__
        return False


class retry_any(_RetryConditionBase):
    """Retry when any of the conditions says so."""

    def __init__(self, *retries: RetryCondition) -> None:
        self.retries = retries

    def __call__(self, error: Exception) -> bool:
        return any(condition(error) for condition in self.retries)


class retry_all(_RetryConditionBase):
    """Retry only when all of the conditions say so."""

    def __init__(self, *retries: RetryCondition) -> None:
        self.retries = retries

    def __call__(self, error: Exception) -> bool:
        return all(condition(error) for condition in self.retries)


class retry_always(_RetryConditionBase):
    """Retry whatever the error."""

    def __call__(self, error: Exception) -> bool:
        return True


class retry_never(_RetryConditionBase):
    """Never retry."""

    def __call__(self, error: Exception) -> bool:
        return False


# --------------------------------------------------------------------------- wait strategies


class _WaitBase:
    """Gives wait strategies ``+`` (their delays add up); ``sum([...])`` works because ``0 + w`` is ``w``."""

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        raise NotImplementedError

    def __add__(self, other: WaitStrategy) -> wait_combine:
        return wait_combine(self, other)

    def __radd__(self, other: Any) -> Any:
        if isinstance(other, int) and other == 0:
            return self
        if callable(other):
            return wait_combine(other, self)
        return NotImplemented


class wait_fixed(_WaitBase):
    """Always wait ``wait`` seconds."""

    def __init__(self, wait: TimeValue) -> None:
        self.wait = _seconds(wait)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return self.wait


class wait_none(wait_fixed):
    """Retry immediately."""

    def __init__(self) -> None:
        super().__init__(0)


class wait_exponential(_WaitBase):
    """Wait ``multiplier * exp_base ** attempts`` seconds, kept between ``min`` and ``max``."""

    def __init__(
        self, multiplier: TimeValue = 1.0, exp_base: float = 2.0, max: TimeValue = 60.0, min: TimeValue = 0.0
    ) -> None:
        self.multiplier = _seconds(multiplier)
        self.exp_base = exp_base
        self.max = _seconds(max)
        self.min = _seconds(min)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return _clamp(self.multiplier * _power(self.exp_base, attempts), self.min, self.max)


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(value, high))


class wait_incrementing(_WaitBase):
    """Wait ``start + increment * attempts`` seconds, at most ``max`` and never negative."""

    def __init__(self, start: TimeValue = 0.0, increment: TimeValue = 100.0, max: TimeValue = math.inf) -> None:
        self.start = _seconds(start)
        self.increment = _seconds(increment)
        self.max = _seconds(max)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return _clamp(self.start + self.increment * attempts, 0.0, self.max)


class wait_random(_WaitBase):
    """Wait a uniformly random time between ``min`` and ``max`` (reproducible when seeded)."""

    def __init__(self, min: TimeValue = 0.0, max: TimeValue = 1.0) -> None:
        self.min = _seconds(min)
        self.max = _seconds(max)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return float(_rng(seed).uniform(self.min, self.max))


class wait_exponential_jitter(_WaitBase):
    """Exponential backoff from ``initial`` plus up to ``jitter`` random seconds, never above ``max``."""

    def __init__(
        self, initial: TimeValue = 1.0, exp_base: float = 2.0, max: TimeValue = 60.0, jitter: TimeValue = 1.0
    ) -> None:
        self.initial = _seconds(initial)
        self.exp_base = exp_base
        self.max = _seconds(max)
        self.jitter = _seconds(jitter)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        backoff = min(self.initial * _power(self.exp_base, attempts), self.max)
        return min(backoff + float(_rng(seed).uniform(0, self.jitter)), self.max)


class wait_random_exponential(_WaitBase):
    """Wait a random time between ``min`` and the exponential backoff (the "full jitter" scheme)."""

    def __init__(
        self, multiplier: TimeValue = 1.0, exp_base: float = 2.0, max: TimeValue = 60.0, min: TimeValue = 0.0
    ) -> None:
        self.multiplier = _seconds(multiplier)
        self.exp_base = exp_base
        self.max = _seconds(max)
        self.min = _seconds(min)

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        high = _clamp(self.multiplier * _power(self.exp_base, attempts), self.min, self.max)
        return float(_rng(seed).uniform(self.min, high))


def wait_full_jitter(
    multiplier: TimeValue = 1.0, exp_base: float = 2.0, max: TimeValue = 60.0, min: TimeValue = 0.0
) -> wait_random_exponential:
    """Another name for :class:`wait_random_exponential`."""
    return wait_random_exponential(multiplier=multiplier, exp_base=exp_base, max=max, min=min)


class wait_chain(_WaitBase):
    """Use strategy number ``attempts`` for that retry, and the last strategy once the list runs out."""

    def __init__(self, *strategies: WaitStrategy) -> None:
        if not strategies:
            raise ValueError("wait_chain requires at least one strategy")
        self.strategies = strategies

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        strategy = self.strategies[min(max(attempts, 0), len(self.strategies) - 1)]
        return strategy(attempts, seed=seed)


class wait_combine(_WaitBase):
    """Wait the sum of the strategies' delays."""

    def __init__(self, *strategies: WaitStrategy) -> None:
        self.strategies = strategies

    def __call__(self, attempts: int, *, seed: int | None = None) -> float:
        return float(sum(strategy(attempts, seed=seed) for strategy in self.strategies))


# --------------------------------------------------------------------------- stop conditions


class _StopBase:
    """Gives stop conditions ``|`` (either one stops) and ``&`` (both must stop)."""

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        raise NotImplementedError

    def __or__(self, other: StopCondition) -> stop_any:
        return stop_any(self, other)

    def __ror__(self, other: StopCondition) -> stop_any:
        return stop_any(other, self)

    def __and__(self, other: StopCondition) -> stop_all:
        return stop_all(self, other)

    def __rand__(self, other: StopCondition) -> stop_all:
        return stop_all(other, self)


class stop_after_attempt(_StopBase):
    """Stop once ``max_attempt_number`` attempts have failed (so the step runs at most that many times)."""

    def __init__(self, max_attempt_number: int) -> None:
        self.max_attempt_number = max_attempt_number

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return attempts >= self.max_attempt_number


class stop_after_delay(_StopBase):
    """Stop once ``max_delay`` has elapsed since the first attempt started."""

    def __init__(self, max_delay: TimeValue) -> None:
        self.max_delay = _seconds(max_delay)

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return elapsed_time >= self.max_delay


class stop_before_delay(_StopBase):
    """Stop when waiting for the next attempt would reach ``max_delay``."""

    def __init__(self, max_delay: TimeValue) -> None:
        self.max_delay = _seconds(max_delay)

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return elapsed_time + upcoming_sleep >= self.max_delay


class stop_any(_StopBase):
    """Stop when any of the conditions says so."""

    def __init__(self, *stops: StopCondition) -> None:
        self.stops = stops

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return any(c(attempts, elapsed_time, upcoming_sleep=upcoming_sleep) for c in self.stops)


class stop_all(_StopBase):
    """Stop only when all of the conditions say so."""

    def __init__(self, *stops: StopCondition) -> None:
        self.stops = stops

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return all(c(attempts, elapsed_time, upcoming_sleep=upcoming_sleep) for c in self.stops)


class stop_never(_StopBase):
    """Never give up (pair it with a retry condition that eventually says no)."""

    def __call__(self, attempts: int, elapsed_time: float, *, upcoming_sleep: float = 0.0) -> bool:
        return False


# --------------------------------------------------------------------------- policies


class _ComposableRetryPolicy:
    """The policy built by :func:`retry_policy` (and by the deprecated ``ConstantDelayRetryPolicy``
    and ``ExponentialBackoffRetryPolicy``); named, and defaulted, as in LlamaIndex Workflows."""

    def __init__(
        self, retry: RetryCondition | None = None, wait: WaitStrategy | None = None, stop: StopCondition | None = None
    ) -> None:
        self.retry = retry
        self.wait = wait if wait is not None else _DEFAULT_WAIT
        self.stop = stop if stop is not None else _DEFAULT_STOP

    def next(
        self, elapsed_time: float, attempts: int, error: Exception, *, seed: int | None = None
    ) -> float | None:
        if self.retry is not None and not self.retry(error):
            return None
        delay = self.wait(max(attempts - 1, 0), seed=seed)
        if self.stop(attempts, elapsed_time, upcoming_sleep=delay):
            return None
        return delay

    def __repr__(self) -> str:
        return f"retry_policy(retry={self.retry!r}, wait={self.wait!r}, stop={self.stop!r})"


# The default parts hold no state, so every policy can share them.
_DEFAULT_WAIT = wait_fixed(5)
_DEFAULT_STOP = stop_after_attempt(3)


def retry_policy(
    retry: RetryCondition | None = None,
    wait: WaitStrategy = _DEFAULT_WAIT,
    stop: StopCondition = _DEFAULT_STOP,
) -> RetryPolicy:
    """Build a policy from a retry condition, a wait strategy and a stop condition.

    ``retry=None`` retries every error. The defaults (``wait_fixed(5)``, ``stop_after_attempt(3)``)
    give three attempts in total, five seconds apart. The wait strategy sees the retry index
    counted from 0, and the stop condition sees the upcoming delay.
    """
    if retry is not None and not callable(retry):
        raise TypeError(f"retry_policy(retry=...) must be a retry condition or None, got {retry!r}")
    if not callable(wait):
        raise TypeError(f"retry_policy(wait=...) must be a wait strategy such as wait_fixed(1), got {wait!r}")
    if not callable(stop):
        raise TypeError(f"retry_policy(stop=...) must be a stop condition such as stop_after_attempt(3), got {stop!r}")
    return _ComposableRetryPolicy(retry=retry, wait=wait, stop=stop)


def ConstantDelayRetryPolicy(maximum_attempts: int = 3, delay: TimeValue = 5) -> RetryPolicy:
    """Deprecated: use ``retry_policy(wait=wait_fixed(delay), stop=stop_after_attempt(maximum_attempts))``."""
    warnings.warn(
        "ConstantDelayRetryPolicy is deprecated; use "
        "retry_policy(wait=wait_fixed(delay), stop=stop_after_attempt(maximum_attempts)) instead.",
        DeprecationWarning,
        stacklevel=2,
    )
    return retry_policy(wait=wait_fixed(delay), stop=stop_after_attempt(maximum_attempts))


def ExponentialBackoffRetryPolicy(
    maximum_attempts: int = 5,
    initial_delay: TimeValue = 1.0,
    multiplier: float = 2.0,
    max_delay: TimeValue = 60.0,
    jitter: bool = True,
) -> RetryPolicy:
    """Deprecated: use ``retry_policy(wait=wait_random_exponential(...) or wait_exponential(...), stop=...)``."""
    warnings.warn(
        "ExponentialBackoffRetryPolicy is deprecated; use retry_policy(wait=wait_random_exponential(...), "
        "stop=stop_after_attempt(...)) (or wait_exponential(...) without jitter) instead.",
        DeprecationWarning,
        stacklevel=2,
    )
    wait_class = wait_random_exponential if jitter else wait_exponential
    wait = wait_class(multiplier=initial_delay, exp_base=multiplier, max=max_delay)
    return retry_policy(wait=wait, stop=stop_after_attempt(maximum_attempts))


# --------------------------------------------------------------------------- engine side


def next_delay(
    policy: RetryPolicy | LegacyRetryPolicy, elapsed_time: float, attempts: int, error: Exception, seed: int | None = None
) -> float | None:
    """Ask ``policy`` how long to wait before retrying after ``error``; ``None`` means give up.

    ``seed`` is passed only when the policy's ``next`` accepts it, so 3-argument policies keep
    working. A negative delay is treated as 0. If ``next`` raises, that exception propagates
    with ``__cause__`` set to ``error``: the runtime should stop retrying and fail the step with it.
    """
    try:
        if seed is not None and _accepts_seed(policy.next):
            delay = cast(RetryPolicy, policy).next(elapsed_time, attempts, error, seed=seed)
        else:
            delay = policy.next(elapsed_time, attempts, error)
    except Exception as policy_error:
        raise policy_error from error
    if delay is None:
        return None
    if isinstance(delay, bool) or not isinstance(delay, int | float | timedelta):
        raise TypeError(
            f"Retry policy {policy!r} returned {delay!r} from next(); "
            "it must return a delay in seconds (a number) or None to stop retrying"
        ) from error
    return max(_seconds(delay), 0.0)


def _accepts_seed(next_method: Callable[..., Any]) -> bool:
    # Bound methods are new objects on every access, so cache on the function underneath.
    function = getattr(next_method, "__func__", next_method)
    try:
        return _signature_accepts_seed(function)
    except TypeError:  # unhashable callable object: inspect it every time
        return _signature_accepts_seed.__wrapped__(function)


@functools.lru_cache(maxsize=512)
def _signature_accepts_seed(function: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return any(
        (p.name == "seed" and p.kind is not inspect.Parameter.POSITIONAL_ONLY)
        or p.kind is inspect.Parameter.VAR_KEYWORD
        for p in parameters
    )


__all__ = [
    "ConstantDelayRetryPolicy",
    "ExponentialBackoffRetryPolicy",
    "LegacyRetryPolicy",
    "RetryCondition",
    "RetryInfo",
    "RetryPolicy",
    "StopCondition",
    "WaitStrategy",
    "next_delay",
    "retry_all",
    "retry_always",
    "retry_any",
    "retry_if_exception",
    "retry_if_exception_cause_type",
    "retry_if_exception_message",
    "retry_if_exception_type",
    "retry_if_not_exception_message",
    "retry_if_not_exception_type",
    "retry_never",
    "retry_policy",
    "retry_unless_exception_type",
    "stop_after_attempt",
    "stop_after_delay",
    "stop_all",
    "stop_any",
    "stop_before_delay",
    "stop_never",
    "wait_chain",
    "wait_combine",
    "wait_exponential",
    "wait_exponential_jitter",
    "wait_fixed",
    "wait_full_jitter",
    "wait_incrementing",
    "wait_none",
    "wait_random",
    "wait_random_exponential",
]
