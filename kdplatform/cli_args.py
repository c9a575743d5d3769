"""The CLI's argument types and message scrubbing: limits that must be positive and finite (exit 2 naming
the flag, through argparse) and database passwords kept out of every printed message."""

from __future__ import annotations

import argparse
import os


def scrub(message: str, *urls: str | None) -> str:
    """`message` with the password of each of `urls` replaced by ***."""
    from sqlalchemy.engine import make_url

    for url in urls:
        try:
            password = make_url(url).password if url else None
        except Exception:
            password = None
        if password:
            message = message.replace(str(password), "***")
    return message


def seconds(value: str) -> float:
    """argparse type for --timeout: a positive, finite number of seconds (0, negative, nan, inf would
    disable the limit)."""
    from kdplatform.sql import QueryRefused
    from kdplatform.sql.limits import positive_seconds

    try:
        return positive_seconds(value, "--timeout")
    except QueryRefused as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {value!r}")
    return n


def urls_of(args) -> list[str | None]:
    """The database URLs a command was given, whose passwords no message may print."""
    return [getattr(args, a, None) for a in ("db", "to", "source")] + [os.environ.get("KDP_DATABASE_URL")]
