"""How the simulator, like WeChat, gives one person different openids per app.

WeChat issues a person one openid per app (Official Account, mini-program)
and links them through a unionid shared across the apps of one developer
account.  The simulator derives all three from the mini-program openid with
an invertible encoding, so it needs no shared state between processes:

    mp openid  M  (any string; ``sim:<M>`` as a wx.login code answers with M)
    unionid    "oUN" + b32(M)
    OA openid  "oOA" + b32(M)

so an OA openid seen in a push or passed to user/info decodes back to its
person.  Demo data uses :func:`identities` to create workers whose both
identities the simulator recognises.
"""

from __future__ import annotations

import base64
import binascii

UNIONID_PREFIX = "oUN"
OA_PREFIX = "oOA"


def _enc(value: str) -> str:
    return base64.b32encode(value.encode()).decode().rstrip("=").lower()


def _dec(value: str) -> str | None:
    padded = value.upper() + "=" * (-len(value) % 8)
    try:
        return base64.b32decode(padded).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def identities(mp_openid: str) -> dict[str, str]:
    """The three identities of the simulated person whose mini-program openid is ``mp_openid``."""
    return {
        "mp_openid": mp_openid,
        "oa_openid": OA_PREFIX + _enc(mp_openid),
        "unionid": UNIONID_PREFIX + _enc(mp_openid),
    }


def mp_openid_for(openid_or_unionid: str) -> str | None:
    """Decode an OA openid or unionid made by :func:`identities`; None for a foreign one."""
    for prefix in (OA_PREFIX, UNIONID_PREFIX):
        if openid_or_unionid.startswith(prefix):
            return _dec(openid_or_unionid[len(prefix):])
    return None


def unionid_for_oa_openid(oa_openid: str) -> str:
    """The unionid of the person behind an OA openid (a stable made-up one for foreign openids)."""
    mp = mp_openid_for(oa_openid)
    if mp is not None:
        return identities(mp)["unionid"]
    return UNIONID_PREFIX + _enc("oa:" + oa_openid)
