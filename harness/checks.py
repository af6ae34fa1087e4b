"""Validation of configuration values before anything is written: a run directory is named after its
configuration's hash and its record is JSON, so every value must survive a JSON round trip unchanged.

NaN and infinities would be written as ``null`` (two configurations sharing one directory, and a resume
that never matches its own record), integers beyond 64 bits cannot be written at all, and strings holding
lone surrogates (undecodable bytes on the command line) cannot be encoded. Each is refused here with a
message naming the argument.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from harness.escaping import short_repr

INT64 = 2**63
MAX_DEPTH = 32


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the argument."""


def check_value(value: Any, where: str, depth: int = 0) -> None:
    """Raise :class:`ConfigError` unless ``value`` is JSON data that round-trips exactly."""
    if depth > MAX_DEPTH:
        raise ConfigError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -INT64 <= value < INT64:
            raise ConfigError(f"{where}: the integer {short_repr(value)} does not fit in 64 bits")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: {value} is not a finite number")
        return
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(f"{where}: {short_repr(value)} is not valid UTF-8 text") from None
        return
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            check_value(v, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{where}: key {short_repr(k)} is not a string")
            check_value(k, f"{where} key", depth + 1)
            check_value(v, f"{where}.{k}", depth + 1)
        return
    raise ConfigError(f"{where}: a {type(value).__name__} is not a JSON value")


def check_args(args: Mapping[str, Any], what: str) -> None:
    """Every value of an argument mapping (``what`` is e.g. ``"task arg"``)."""
    for k, v in args.items():
        if not isinstance(k, str):
            raise ConfigError(f"{what} name {short_repr(k)} is not a string")
        check_value(k, f"{what} name", 1)
        check_value(v, f"{what} {k!r}")


def check_int(value: Any, where: str, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where} must be an integer, got {short_repr(value)}")
    if low is not None and value < low:
        raise ConfigError(f"{where} must be >= {low}, got {value}")
    hi = INT64 - 1 if high is None else high
    if value > hi:
        raise ConfigError(f"{where} must be <= {hi}, got {short_repr(value)}")
    return value


def check_float(value: Any, where: str, low: float | None = None, high: float | None = None, *,
                low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} must be a number, got {short_repr(value)}")
    x = float(value)
    if not math.isfinite(x):
        raise ConfigError(f"{where} must be a finite number, got {value}")
    if low is not None and (x <= low if low_open else x < low):
        raise ConfigError(f"{where} must be {'>' if low_open else '>='} {low:g}, got {value}")
    if high is not None and x > high:
        raise ConfigError(f"{where} must be <= {high:g}, got {value}")
    return x


__all__ = ["ConfigError", "check_args", "check_float", "check_int", "check_value"]


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def as_bool(value: object, name: str) -> bool:
    """A task arg that is a switch: a bool, or one of the words a command line gives (``true``, ``0``, ``on``...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ValueError(f"{name} must be true or false, got {value!r}")
