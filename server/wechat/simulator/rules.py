"""WeChat's validation rules as the simulator enforces them, and a tiny PNG maker."""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from functools import lru_cache

from .state import WxError

# -- template / subscribe message data ---------------------------------------------------------

#: Longest value per keyword type (``thing3`` -> ``thing``), from the subscribe-message rules that
#: the 2023 template-message rules adopted; any other keyword (``keyword1``, ``time2`` ...) gets 20.
VALUE_LIMITS = {
    "thing": 20, "character_string": 32, "number": 32, "letter": 32, "symbol": 5,
    "phrase": 5, "car_number": 8, "phone_number": 17, "amount": 32,
}
DEFAULT_VALUE_LIMIT = 20
#: Kept by WeChat's template API for old callers but no longer shown; recorded, never checked.
IGNORED_KEYS = ("first", "remark")
_KEY_TYPE = re.compile(r"^(.*?)\d*$")


def check_message_data(data) -> None:
    """``data`` must map keyword -> {"value": str}; values obey their length and single-line rules."""
    if not isinstance(data, dict) or not data:
        raise WxError(47001, "data format error: data is missing")
    for key, item in data.items():
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            raise WxError(47001, f"data format error: data.{key}.value")
        if key in IGNORED_KEYS:
            continue
        value = item["value"]
        limit = VALUE_LIMITS.get(_KEY_TYPE.match(key).group(1), DEFAULT_VALUE_LIMIT)
        if "\n" in value or "\r" in value:
            raise WxError(47003, f"argument invalid! data.{key}.value contains a line break")
        if len(value) > limit:
            raise WxError(47003, f"argument invalid! data.{key}.value exceeds {limit} characters")


# -- custom menu -------------------------------------------------------------------------------

#: Button type -> fields it needs.
BUTTON_FIELDS = {
    "click": ("key",), "scancode_push": ("key",), "scancode_waitmsg": ("key",),
    "pic_sysphoto": ("key",), "pic_photo_or_album": ("key",), "pic_weixin": ("key",),
    "location_select": ("key",), "view": ("url",), "miniprogram": ("url", "appid", "pagepath"),
    "media_id": ("media_id",), "view_limited": ("media_id",),
    "article_id": ("article_id",), "article_view_limited": ("article_id",),
}
# (name size, type, key size, url) errcodes for top-level and sub buttons
_TOP_CODES = (40018, 40017, 40019, 40055)
_SUB_CODES = (40025, 40024, 40026, 40054)


def _blen(value) -> int:
    return len(value.encode()) if isinstance(value, str) else 0


def check_menu(menu) -> None:
    """1-3 top buttons, 1-5 sub buttons each, known types with their fields, WeChat's byte limits."""
    buttons = menu.get("button") if isinstance(menu, dict) else None
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise WxError(40016)
    for button in buttons:
        subs = button.get("sub_button") if isinstance(button, dict) else None
        if isinstance(subs, dict):  # the shape get_current_selfmenu_info answers with
            subs = subs.get("list")
        if subs:
            if not isinstance(subs, list) or len(subs) > 5:
                raise WxError(40023)
            _check_button(button, 16, _TOP_CODES, leaf=False)
            for sub in subs:
                _check_button(sub, 60, _SUB_CODES, leaf=True)
        else:
            _check_button(button, 16, _TOP_CODES, leaf=True)


def _check_button(button, name_bytes: int, codes: tuple[int, int, int, int], leaf: bool) -> None:
    name_code, type_code, key_code, url_code = codes
    if not isinstance(button, dict):
        raise WxError(type_code)
    if not 1 <= _blen(button.get("name")) <= name_bytes:
        raise WxError(name_code)
    if not leaf:
        return
    needed = BUTTON_FIELDS.get(button.get("type"))
    if needed is None:
        raise WxError(type_code)
    for field in needed:
        size = _blen(button.get(field))
        if field == "key" and not 1 <= size <= 128:
            raise WxError(key_code)
        if field == "url" and not (1 <= size <= 1024 and button["url"].startswith(("http://", "https://"))):
            raise WxError(url_code)
        if size == 0:
            raise WxError(47001, f"data format error: button {field} is missing")


def selfmenu_info(menu: dict) -> dict:
    """The menu as ``get_current_selfmenu_info`` shows it (sub buttons under ``{"list": [...]}``)."""
    out = []
    for button in menu["button"]:
        button = dict(button)
        if button.get("sub_button"):
            subs = button["sub_button"]
            button["sub_button"] = subs if isinstance(subs, dict) else {"list": subs}
        out.append(button)
    return {"button": out}


# -- content security --------------------------------------------------------------------------

#: word -> (suggest, label); labels as msg_sec_check v2 documents them
#: (10001 ads, 20001 politics, 20002 porn, 20003 abuse, 20006 crime, 20008 fraud).
RISKY_WORDS = {
    "赌博": ("risky", 20006), "毒品": ("risky", 20006), "枪支": ("risky", 20006),
    "诈骗": ("risky", 20008), "色情": ("risky", 20002), "傻逼": ("risky", 20003),
    "代开发票": ("risky", 10001), "加微信": ("review", 10001), "刷单": ("review", 20008),
}


def sec_check(content: str) -> tuple[str, int, str | None]:
    """(suggest, label, keyword) for a text: the first listed word found decides."""
    for word, (suggest, label) in RISKY_WORDS.items():
        if word in content:
            return suggest, label, word
    return "pass", 100, None


# -- images ------------------------------------------------------------------------------------

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _finder(x: int, y: int, n: int) -> bool | None:
    """Dark/light inside one of the three corner squares, None outside them."""
    for ox, oy in ((0, 0), (n - 7, 0), (0, n - 7)):
        dx, dy = x - ox, y - oy
        if 0 <= dx < 7 and 0 <= dy < 7:
            return max(abs(dx - 3), abs(dy - 3)) != 2
    return None


@lru_cache(maxsize=256)
def code_png(text: str, modules: int = 25, scale: int = 6) -> bytes:
    """A QR-looking grayscale PNG whose pattern comes from ``text``, which it also carries in a tEXt chunk."""
    bits = int.from_bytes(hashlib.sha512(text.encode()).digest() * 10, "big")
    rows = []
    for y in range(modules):
        row = bytearray()
        for x in range(modules):
            dark = _finder(x, y, modules)
            if dark is None:
                dark = bool(bits >> (y * modules + x) & 1)
            row += (b"\x00" if dark else b"\xff") * scale
        rows.extend([b"\x00" + bytes(row)] * scale)
    size = modules * scale
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return b"".join((
        b"\x89PNG\r\n\x1a\n",
        _chunk(b"IHDR", header),
        _chunk(b"tEXt", b"Comment\x00" + text.encode("ascii", "backslashreplace")),
        _chunk(b"IDAT", zlib.compress(b"".join(rows), 6)),
        _chunk(b"IEND", b""),
    ))
