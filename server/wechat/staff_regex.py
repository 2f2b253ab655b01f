"""Keyword patterns written by union staff, matched in time linear in the message (RE2).

Staff edit keyword replies in the console (``match = "regex"``).  With Python's backtracking ``re``, a
pattern such as ``(a+)+$`` takes time exponential in a follower's message: two dozen characters held the
callback for a second, a few more would pass gunicorn's timeout and kill the worker.  RE2 (Google's
engine, ``google-re2``) guarantees linear time; it has no backreferences or look-arounds, and a pattern
using them is refused when staff save it, as any invalid pattern is.
"""

from __future__ import annotations

import re2

error = re2.error
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # an invalid pattern is the caller's error to report, not a line on stderr


def compile_pattern(pattern: str):
    """The compiled pattern (``search(text)`` as with ``re``); raises :data:`error` when RE2 cannot use it."""
    return re2.compile(pattern, _OPTIONS)
