"""The Official Account callback's wire format: WeChat XML, signatures and message encryption.

The protocol work is wechatpy's and xmltodict's (the parser wechatpy itself uses); this module only
arranges them for the hot path:

* :func:`parse_xml` is ``xmltodict.parse`` with entities disabled, after a byte scan that refuses
  any DTD or entity declaration outright (WeChat never sends one, so nothing is ever expanded or
  fetched), on an expat parser that also refuses entity declarations;
* :class:`MessageCrypto` checks signatures and decrypts and encrypts safe-mode messages with
  wechatpy's ``PrpCrypto`` (AES-256-CBC, IV = the key's first 16 bytes, PKCS#7 to 32 bytes;
  ``random(16) + length + xml + appid``) and wechatpy's signer, built once per app instead of per
  message as ``wechatpy.crypto.WeChatCrypto`` does, and turns anything undecryptable into
  ``ValueError``;
* :func:`cdata` writes text for a reply (``]]>`` split across two sections).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import struct
import time
from types import SimpleNamespace
from xml.parsers import expat
from xml.parsers.expat import ExpatError

import xmltodict
from wechatpy.crypto import PrpCrypto, _get_signature
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import WeChatSigner, to_text

__all__ = ["parse_xml", "MessageCrypto", "cdata", "InvalidAppIdException", "InvalidSignatureException", "ExpatError",
           "signature", "signature_ok"]

_DTD = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)


def _forbid_entities(*_args) -> None:
    raise ValueError("entities are refused")


def _parser_create(*args, **kwargs):
    """expat's parser with entity declarations refused (the second line, for encodings the byte scan misses)."""
    parser = expat.ParserCreate(*args, **kwargs)
    parser.EntityDeclHandler = _forbid_entities
    return parser


_EXPAT = SimpleNamespace(ParserCreate=_parser_create, ExpatError=ExpatError, error=expat.error)


def parse_xml(raw: bytes | str) -> dict:
    """Parse WeChat XML into ``{root: value}`` (xmltodict's shape), refusing any DTD or entity declaration.

    Raises ``ValueError`` or ``ExpatError``.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if _DTD.search(raw):
        raise ValueError("DTDs and entities are refused")
    return xmltodict.parse(raw, disable_entities=True, expat=_EXPAT) or {}


def cdata(value) -> str:
    """``value`` as a CDATA section (a ``]]>`` inside is split so it cannot end the section)."""
    return "<![CDATA[" + str(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def signature(token: str, timestamp: str, nonce: str, *extra: str) -> str:
    """WeChat's signature (wechatpy's signer): SHA-1 of the sorted, concatenated parts."""
    signer = WeChatSigner()
    signer.add_data(token, timestamp, nonce, *extra)
    return signer.signature


def signature_ok(expected_token: str, given: str, timestamp: str, nonce: str, *extra: str) -> bool:
    return hmac.compare_digest(signature(expected_token, timestamp, nonce, *extra).encode(), (given or "").encode("utf-8"))


_ENVELOPE = (
    "<xml>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n"
    "<TimeStamp>{timestamp}</TimeStamp>\n<Nonce><![CDATA[{nonce}]]></Nonce>\n</xml>"
)


class MessageCrypto:
    """Safe and compatible mode for one Official Account (token, EncodingAESKey, appid), on wechatpy's crypto."""

    def __init__(self, token: str, encoding_aes_key: str, appid: str):
        key = base64.b64decode(encoding_aes_key + "=")
        if len(key) != 32:
            raise ValueError("the EncodingAESKey must decode to 32 bytes")
        self.token = token
        self.appid = appid
        self._prp = PrpCrypto(key)  # wechatpy's cipher, built once

    def decrypt(self, encrypt: str, msg_signature: str, timestamp: str, nonce: str) -> str:
        """The plaintext XML of a safe-mode push; ``InvalidSignatureException``, ``InvalidAppIdException`` or ``ValueError``."""
        if not isinstance(encrypt, str):
            raise ValueError("the envelope carries no ciphertext")
        if not signature_ok(self.token, msg_signature, timestamp, nonce, encrypt):
            raise InvalidSignatureException()
        try:
            return self._prp.decrypt(encrypt, self.appid)
        except InvalidAppIdException:
            raise
        except (binascii.Error, ValueError, struct.error, IndexError, TypeError) as exc:
            # not base64, not whole AES blocks, bad padding or length, not UTF-8 (UnicodeDecodeError is a ValueError)
            raise ValueError(f"undecryptable message: {type(exc).__name__}") from exc

    def encrypt(self, xml: str, nonce: str, timestamp: str | None = None) -> str:
        """The safe-mode envelope of a reply, signed."""
        timestamp = timestamp or str(int(time.time()))
        encrypt = to_text(self._prp.encrypt(xml, self.appid))
        return _ENVELOPE.format(encrypt=encrypt, signature=_get_signature(self.token, timestamp, nonce, encrypt),
                                timestamp=timestamp, nonce=nonce)
