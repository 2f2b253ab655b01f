"""The Official Account callback's wire format: WeChat XML, signatures and message encryption.

The callback runs these on every push, so they are written for the hot path:

* :func:`parse_xml` turns a push into the same dict ``xmltodict.parse`` gives
  (same expat parser, same shape: text stripped, empty elements ``None``,
  repeated elements lists, attributes ``@name``), with DTDs and entity
  declarations refused before and while parsing;
* :class:`MessageCrypto` checks signatures and decrypts and encrypts safe-mode
  messages exactly as WeChat specifies (AES-256-CBC, IV = the key's first 16
  bytes, PKCS#7 to 32 bytes; ``random(16) + length + xml + appid``), with the
  cipher built once instead of per message as in wechatpy;
* :func:`cdata` writes text for a reply (``]]>`` split across two sections).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
import time
from xml.parsers import expat

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException

__all__ = ["parse_xml", "MessageCrypto", "cdata", "InvalidAppIdException", "InvalidSignatureException", "ExpatError"]

ExpatError = expat.ExpatError

_DTD = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)


def _forbid_entities(*_args) -> None:
    raise ValueError("entities are refused")


def parse_xml(raw: bytes | str) -> dict:
    """Parse WeChat XML into ``{root: value}``, refusing any DTD or entity declaration.

    WeChat never sends a DTD.  The byte scan refuses them outright (no entity is
    ever parsed, let alone expanded or fetched); the parser refusing entity
    declarations is the second line.  Raises ``ValueError`` or ``ExpatError``.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if _DTD.search(raw):
        raise ValueError("DTDs and entities are refused")
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.ordered_attributes = True
    parser.EntityDeclHandler = _forbid_entities
    # One frame per open element: [children dict or None, text parts]; the bottom frame holds the root.
    frames: list[list] = [[None, []]]

    def start(_name, attrs):
        item = None
        if attrs:
            item = {"@" + attrs[i]: attrs[i + 1] for i in range(0, len(attrs), 2)}
        frames.append([item, []])

    def end(name):
        item, texts = frames.pop()
        text = "".join(texts).strip() if texts else ""
        if item is None:
            value = text or None
        else:
            value = item
            if text:
                item["#text"] = text
        parent = frames[-1]
        siblings = parent[0]
        if siblings is None:
            parent[0] = {name: value}
        elif name in siblings:
            previous = siblings[name]
            if isinstance(previous, list):
                previous.append(value)
            else:
                siblings[name] = [previous, value]
        else:
            siblings[name] = value

    def characters(data):
        frames[-1][1].append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    parser.Parse(raw, True)
    return frames[0][0] or {}


def cdata(value) -> str:
    """``value`` as a CDATA section (a ``]]>`` inside is split so it cannot end the section)."""
    return "<![CDATA[" + str(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def signature(token: str, timestamp: str, nonce: str, *extra: str) -> str:
    """WeChat's signature: SHA-1 of the sorted, concatenated parts."""
    return hashlib.sha1("".join(sorted((token, timestamp, nonce, *extra))).encode("utf-8")).hexdigest()


def signature_ok(expected_token: str, given: str, timestamp: str, nonce: str, *extra: str) -> bool:
    return hmac.compare_digest(signature(expected_token, timestamp, nonce, *extra).encode(), (given or "").encode("utf-8"))


_ENVELOPE = (
    "<xml>\n<Encrypt><![CDATA[{encrypt}]]></Encrypt>\n<MsgSignature><![CDATA[{signature}]]></MsgSignature>\n"
    "<TimeStamp>{timestamp}</TimeStamp>\n<Nonce><![CDATA[{nonce}]]></Nonce>\n</xml>"
)
_BLOCK = 32  # WeChat pads to 32 bytes (PKCS#7 with a 32-byte block)


class MessageCrypto:
    """Safe and compatible mode for one Official Account (token, EncodingAESKey, appid)."""

    def __init__(self, token: str, encoding_aes_key: str, appid: str):
        key = base64.b64decode(encoding_aes_key + "=")
        if len(key) != 32:
            raise ValueError("the EncodingAESKey must decode to 32 bytes")
        self.token = token
        self.appid = appid
        self._appid_bytes = appid.encode("utf-8")
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16]))

    def decrypt(self, encrypt: str, msg_signature: str, timestamp: str, nonce: str) -> str:
        """The plaintext XML of a safe-mode push; ``InvalidSignatureException``, ``InvalidAppIdException`` or ``ValueError``."""
        if not isinstance(encrypt, str):
            raise ValueError("the envelope carries no ciphertext")
        if not signature_ok(self.token, msg_signature, timestamp, nonce, encrypt):
            raise InvalidSignatureException()
        try:
            data = base64.b64decode(encrypt)
        except binascii.Error as exc:
            raise ValueError("the ciphertext is not base64") from exc
        if not data or len(data) % 16:
            raise ValueError("the ciphertext is not a whole number of AES blocks")
        decryptor = self._cipher.decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= _BLOCK or len(plain) < 20 + pad:
            raise ValueError("bad padding")
        content = plain[16:-pad]
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise ValueError("bad message length")
        if content[4 + length:] != self._appid_bytes:
            raise InvalidAppIdException()
        return content[4:4 + length].decode("utf-8")

    def encrypt(self, xml: str, nonce: str, timestamp: str | None = None) -> str:
        """The safe-mode envelope of a reply, signed."""
        timestamp = timestamp or str(int(time.time()))
        body = xml.encode("utf-8")
        data = secrets.token_hex(8).encode("ascii") + struct.pack(">I", len(body)) + body + self._appid_bytes
        pad = _BLOCK - len(data) % _BLOCK
        data += bytes((pad,)) * pad
        encryptor = self._cipher.encryptor()
        encrypt = base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode("ascii")
        return _ENVELOPE.format(encrypt=encrypt, signature=signature(self.token, timestamp, nonce, encrypt),
                                timestamp=timestamp, nonce=nonce)
