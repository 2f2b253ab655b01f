"""Protection of person data: ID number validation, encryption at rest, masking.

ID numbers (居民身份证号) are encrypted with Fernet (AES-128-CBC + HMAC) under
``ID_ENCRYPTION_KEY``; several comma-separated keys allow rotation (the first
encrypts, all decrypt).  A keyed HMAC of the normalised number is stored
beside it so that uniqueness is checked by the database without decrypting.
Every response and every log line shows only the masked form.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from datetime import date

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .config import ConfigError

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_RE = re.compile(r"^[1-9]\d{16}[\dX]$")
_PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
# Candidate ID numbers inside free text (logs): 17 digits and a digit or X.
_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])([1-9]\d{2})\d{11}(\d{3}[\dXx])(?![0-9A-Za-z])")


def id_check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS))
    return _ID_CHECK[total % 11]


def normalise_id_number(value: str) -> str:
    return (value or "").strip().replace(" ", "").upper()


def validate_id_number(value: str) -> str | None:
    """Return a Chinese error message, or None when ``value`` is a valid 18-digit ID number."""
    v = normalise_id_number(value)
    if not _ID_RE.match(v):
        return "身份证号应为18位，前17位为数字，最后一位为数字或X"
    if id_check_char(v[:17]) != v[17]:
        return "身份证号校验位不正确，请核对后重新输入"
    try:
        born = date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        return "身份证号中的出生日期不正确"
    if born.year < 1900 or born > date.today():
        return "身份证号中的出生日期不正确"
    return None


def birth_date_from_id(value: str) -> date:
    v = normalise_id_number(value)
    return date(int(v[6:10]), int(v[10:12]), int(v[12:14]))


def gender_from_id(value: str) -> str:
    return "M" if int(normalise_id_number(value)[16]) % 2 else "F"


def mask_id_number(value: str | None) -> str | None:
    """First 3 and last 4 characters kept: ``110***********123X``."""
    if not value:
        return None
    v = normalise_id_number(value)
    if len(v) <= 7:
        return "*" * len(v)
    return v[:3] + "*" * (len(v) - 7) + v[-4:]


def validate_phone(value: str) -> str | None:
    if not _PHONE_RE.match((value or "").strip()):
        return "请输入11位中国大陆手机号码"
    return None


def mask_phone(value: str | None) -> str | None:
    if not value:
        return None
    v = value.strip()
    if len(v) < 7:
        return "*" * len(v)
    return v[:3] + "****" + v[-4:]


class IdCipher:
    """Encrypts, decrypts and indexes ID numbers."""

    def __init__(self, keys: str):
        parts = [k.strip() for k in (keys or "").split(",") if k.strip()]
        if not parts:
            raise ConfigError("ID_ENCRYPTION_KEY is empty")
        try:
            fernets = [Fernet(k.encode()) for k in parts]
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                "ID_ENCRYPTION_KEY must be one or more comma-separated Fernet keys "
                "(32 url-safe base64 bytes); make one with `unionhub gen-key`"
            ) from exc
        self._fernet = MultiFernet(fernets)
        # The blind-index key is derived from the first key and must not change
        # on rotation, so it is taken from the oldest key when several are given.
        self._index_key = hashlib.sha256(b"unionhub-id-index:" + parts[-1].encode()).digest()

    def encrypt(self, id_number: str) -> bytes:
        return self._fernet.encrypt(normalise_id_number(id_number).encode())

    def decrypt(self, token: bytes | None) -> str | None:
        if not token:
            return None
        try:
            return self._fernet.decrypt(bytes(token)).decode()
        except InvalidToken:
            logging.getLogger("unionhub.security").error("an ID number could not be decrypted (wrong key?)")
            return None

    def index(self, id_number: str) -> str:
        return hmac.new(self._index_key, normalise_id_number(id_number).encode(), hashlib.sha256).hexdigest()

    def rotate(self, token: bytes) -> bytes:
        return self._fernet.rotate(bytes(token))


def mask_ids_in_text(text: str) -> str:
    return _ID_IN_TEXT.sub(lambda m: m.group(1) + "*" * 11 + m.group(2).upper(), text)


class MaskingFilter(logging.Filter):
    """Masks anything that looks like an ID number in every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix here
            return True
        masked = mask_ids_in_text(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True
