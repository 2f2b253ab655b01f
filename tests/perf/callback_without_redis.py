"""A diagnostic, not a result: UnionHub with the callback's two Redis calls per push taken out.

``python -m tests.perf callback --without-redis`` serves this module as the callback target to
measure how close the rest of the callback (gunicorn, Flask, signature, AES, XML, routing, the
bots, the push-log record) comes to the trivial endpoint by itself: an upper bound on what any
change to the claim and store could win.  Every push is taken as claimed and nothing is stored
(no exactly-once, no push log), so it must never be served for real.
"""

from handlers.wechat.claims import PushClaims


def _claimed(self, claim_key, conversation_key=None):
    return True, None


def _stored(self, claim_key, answer_json, log_record):
    return False


PushClaims.claim = _claimed
PushClaims.store = _stored

from server.wsgi import app  # noqa: E402  (after the patch)

__all__ = ["app"]
