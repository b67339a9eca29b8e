"""Typed exchange errors. Messages never contain API keys or tokens."""

from __future__ import annotations

from datetime import datetime


class ExchangeError(Exception):
    """Base class. ``retryable`` says whether the same request may be sent again."""

    retryable = False

    def __init__(self, message: str, *, name: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.name = name  # the exchange's error name, e.g. "insufficient_funds_bid"
        self.status = status


class AuthenticationError(ExchangeError):
    """Keys missing, wrong, expired, or JWT refused."""


class InsufficientFundsError(ExchangeError):
    pass


class BelowMinimumOrderError(ExchangeError):
    pass


class OrderNotFoundError(ExchangeError):
    pass


class InvalidRequestError(ExchangeError):
    """A 4xx the request itself caused; sending it again cannot help."""


class TransientExchangeError(ExchangeError):
    """Timeout, connection error or 5xx: may succeed on retry."""

    retryable = True


class RateLimitedError(ExchangeError):
    """HTTP 429. ``retry_after`` seconds when the server said so."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class BannedError(ExchangeError):
    """HTTP 418: calling again before ``until`` extends the ban. Not retried."""

    def __init__(self, message: str, *, until: datetime, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.until = until


class OrderNotPlacedError(ExchangeError):
    """An ambiguous placement failed and the lookup by identifier proved the order absent.

    The caller may try again, with a *new* identifier.
    """


class OrderStateUnknownError(ExchangeError):
    """An ambiguous placement failed and the lookup by identifier failed too.

    The order may or may not exist: leave it for reconciliation by identifier.
    """
