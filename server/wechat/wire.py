"""The Official Account callback's wire format: WeChat XML, signatures and message encryption.

The protocol work (signatures, AES) is wechatpy's and the XML parsing the standard library's C
parser; this module only arranges them for the hot path:

* :func:`parse_xml` parses with the standard library's C ElementTree parser (expat) into
  xmltodict's shape (the shape wechatpy's own ``parse_message`` reads): it decodes the body as
  strict UTF-8 first (WeChat sends nothing else, and a declared encoding can then hide nothing),
  refuses any DTD or entity declaration outright (WeChat never sends one, so nothing is ever
  expanded or fetched; without a DTD expat knows only the five predefined entities), and refuses
  namespaces and nesting deeper than WeChat's.  xmltodict (SAX callbacks in Python) cost the
  callback three times as much per push; the test suite still checks the shapes against it;
* :class:`MessageCrypto` checks signatures and decrypts and encrypts safe-mode messages with
  wechatpy's ``PrpCrypto`` (AES-256-CBC, IV = the key's first 16 bytes, PKCS#7 to 32 bytes;
  ``random(16) + length + xml + appid``) and wechatpy's signer, built once per app instead of per
  message as ``wechatpy.crypto.WeChatCrypto`` does, with the 16 random bytes that lead every
  encrypted reply drawn from the OS's CSPRNG (wechatpy draws them with ``random.sample``), and
  turns anything undecryptable into ``ValueError``;
* :func:`cdata` writes text for a reply (``]]>`` split across two sections).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
import struct
import time
from xml.etree import ElementTree

from wechatpy.crypto import PrpCrypto, _get_signature
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import WeChatSigner, to_text

__all__ = ["parse_xml", "MessageCrypto", "cdata", "InvalidAppIdException", "InvalidSignatureException",
           "signature", "signature_ok"]

_DTD = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
MAX_DEPTH = 8  # WeChat's pushes nest three levels at most (SendPicsInfo > PicList > item)


class XMLRefused(ValueError):
    """XML the callback does not parse: not UTF-8, a DTD or entity declaration, namespaces, too deep."""


def parse_xml(raw: bytes | str) -> dict:
    """Parse WeChat XML into ``{root: value}`` (xmltodict's shape), refusing any DTD or entity declaration.

    An element without attributes or children is its stripped text (None when empty); otherwise
    a dict of ``@attribute`` values, children (a list for a repeated name) and ``#text``.
    Raises ``ValueError`` (also for malformed XML).
    """
    if not isinstance(raw, str):
        raw = bytes(raw).decode("utf-8")  # strict: UnicodeDecodeError is a ValueError
    if _DTD.search(raw):
        raise XMLRefused("DTDs and entities are refused")
    parser = ElementTree.XMLParser()  # the C parser; fed a str, it reads UTF-8 whatever the XML declares
    try:
        parser.feed(raw)
        root = parser.close()
    except ElementTree.ParseError as exc:
        raise ValueError(f"malformed XML: {exc}") from exc
    return {_tag(root): _value(root, 1)}


def _tag(element) -> str:
    tag = element.tag
    if tag[0] == "{":
        raise XMLRefused("namespaces are refused")
    return tag


def _value(element, depth: int):
    """xmltodict's value of one element (see :func:`parse_xml`)."""
    attrib = element.attrib
    if not len(element):
        text = (element.text or "").strip() or None
        if not attrib:
            return text
        value = {"@" + name: v for name, v in attrib.items()}
        if text is not None:
            value["#text"] = text
        return value
    if depth >= MAX_DEPTH:
        raise XMLRefused("the XML is nested too deeply")
    value = {"@" + name: v for name, v in attrib.items()} if attrib else {}
    texts = [element.text or ""]
    for child in element:
        name, child_value = _tag(child), _value(child, depth + 1)
        if name in value:
            held = value[name]
            if isinstance(held, list):
                held.append(child_value)
            else:
                value[name] = [held, child_value]
        else:
            value[name] = child_value
        texts.append(child.tail or "")
    text = "".join(texts).strip()
    if text:
        value["#text"] = text
    return value


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


class _PrpCrypto(PrpCrypto):
    """wechatpy's cipher with the reply's random prefix from ``secrets`` instead of ``random``."""

    def get_random_string(self) -> str:
        return secrets.token_hex(8)  # 16 characters, as WeChat's own samples use


class MessageCrypto:
    """Safe and compatible mode for one Official Account (token, EncodingAESKey, appid), on wechatpy's crypto."""

    def __init__(self, token: str, encoding_aes_key: str, appid: str):
        key = base64.b64decode(encoding_aes_key + "=")
        if len(key) != 32:
            raise ValueError("the EncodingAESKey must decode to 32 bytes")
        self.token = token
        self.appid = appid
        self._prp = _PrpCrypto(key)  # wechatpy's cipher, built once

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
