"""The one error type of the WeChat gateway, and how its codes are classified.

Callers (services, jobs) decide what to do from ``kind`` alone:

* ``permanent`` - retrying cannot help (the user unfollowed, refused the
  subscription, the data breaks a template rule, a wrong template id ...);
  record the failure and move on.
* ``transient`` - try again later (system busy, rate limits, timeouts,
  connection errors, HTTP 5xx).
* ``token`` - the access token was rejected; the gateway already refreshed
  it and retried once, so a caller seeing this may retry later as transient.

Unknown codes count as permanent: retrying an error we do not understand
would only repeat it.  This module imports neither wechatpy nor Flask so
that any layer can catch :class:`WeChatAPIError`.
"""

from __future__ import annotations

TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
TRANSIENT_ERRCODES = frozenset({-1, 45009, 45011, 45033, 45047})
#: Documented for readers; every code outside the two sets above is permanent anyway.
PERMANENT_ERRCODES = frozenset({40003, 40037, 43004, 43019, 43101, 47001, 47003, 48001, 40066, 93000})

KINDS = ("permanent", "transient", "token")


def classify(errcode: int | None) -> str:
    """``"token"``, ``"transient"`` or ``"permanent"`` for a WeChat errcode (None: no answer at all)."""
    if errcode is None:
        return "transient"
    if errcode in TOKEN_ERRCODES:
        return "token"
    if errcode in TRANSIENT_ERRCODES:
        return "transient"
    return "permanent"


class WeChatAPIError(Exception):
    """A call to WeChat (or WeCom) failed: an errcode, a network error or an HTTP error.

    ``errcode`` is None when WeChat gave no errcode (timeout, connection
    error, HTTP error page); ``http_status`` is set for HTTP errors.
    """

    def __init__(self, errcode: int | None, errmsg: str | None = None, kind: str | None = None,
                 http_status: int | None = None):
        self.errcode = errcode
        self.errmsg = errmsg or ""
        self.kind = kind or classify(errcode)
        self.http_status = http_status
        super().__init__(f"WeChat API error {errcode}: {self.errmsg} ({self.kind})")

    @property
    def retryable(self) -> bool:
        return self.kind != "permanent"

    def __reduce__(self):  # picklable for RQ job results
        return (type(self), (self.errcode, self.errmsg, self.kind, self.http_status))
