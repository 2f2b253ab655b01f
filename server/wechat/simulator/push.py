"""Build pushes the way WeChat's servers do: signed query strings, plaintext or AES-encrypted bodies.

Used by the simulator's phone page to talk to the app's /wechat callback,
and by the tests and the benchmark.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from xml.sax.saxutils import escape

from wechatpy.crypto import WeChatCrypto

from server.wechat.wire import cdata as _cdata
from server.wechat.wire import signature


def build_xml(fields: dict) -> str:
    parts = []
    for key, value in fields.items():
        if isinstance(value, int):
            parts.append(f"<{key}>{value}</{key}>")
        elif isinstance(value, dict):
            parts.append(f"<{key}>{build_xml(value)[5:-6]}</{key}>")
        else:
            parts.append(f"<{key}>{_cdata(value)}</{key}>")
    return "<xml>" + "".join(parts) + "</xml>"


def text_push(openid: str, content: str, to: str = "gh_unionhub", msg_id: int | None = None) -> str:
    return build_xml({
        "ToUserName": to, "FromUserName": openid, "CreateTime": int(time.time()), "MsgType": "text",
        "Content": content, "MsgId": msg_id or secrets.randbelow(10**16),
    })


def event_push(openid: str, event: str, key: str | None = None, to: str = "gh_unionhub", **extra) -> str:
    fields = {"ToUserName": to, "FromUserName": openid, "CreateTime": int(time.time()), "MsgType": "event", "Event": event}
    if key is not None:
        fields["EventKey"] = key
    fields.update(extra)
    return build_xml(fields)


@dataclass
class SignedPush:
    query: dict
    body: bytes


class PushSigner:
    """Signs (and in safe mode encrypts) a push for the callback URL, like WeChat does."""

    def __init__(self, token: str, aes_key: str, appid: str):
        self.token = token
        self.crypto = WeChatCrypto(token, aes_key, appid)

    def sign(self, xml: str, mode: str = "plain", timestamp: int | None = None) -> SignedPush:
        ts, nonce = str(timestamp or int(time.time())), secrets.token_hex(5)
        query = {"timestamp": ts, "nonce": nonce, "signature": signature(self.token, ts, nonce), "openid": _openid_of(xml)}
        if mode == "plain":
            return SignedPush(query, xml.encode())
        encrypted = self.crypto.encrypt_message(xml, nonce, ts)
        cipher = encrypted.split("<Encrypt><![CDATA[")[1].split("]]></Encrypt>")[0]
        query.update(encrypt_type="aes", msg_signature=signature(self.token, ts, nonce, cipher))
        if mode == "safe":
            body = f"<xml><ToUserName><![CDATA[gh_unionhub]]></ToUserName><Encrypt><![CDATA[{cipher}]]></Encrypt></xml>"
        else:  # compatible mode: plaintext fields and the ciphertext side by side
            body = xml[:-6] + f"<Encrypt><![CDATA[{cipher}]]></Encrypt></xml>"
        return SignedPush(query, body.encode())

    def open_reply(self, push: SignedPush, reply: bytes | str) -> str:
        """The plaintext of the callback's answer (decrypting it in safe and compatible mode)."""
        text = reply.decode() if isinstance(reply, bytes) else reply
        if "encrypt_type" not in push.query or text == "success":
            return text
        # WeChat checks the reply's own MsgSignature, timestamp and nonce.
        sig = text.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
        ts = text.split("<TimeStamp>")[1].split("</TimeStamp>")[0]
        nonce = text.split("<Nonce><![CDATA[")[1].split("]]>")[0]
        return self.crypto.decrypt_message(text, sig, ts, nonce)


def _openid_of(xml: str) -> str:
    try:
        return xml.split("<FromUserName><![CDATA[")[1].split("]]>")[0]
    except IndexError:
        return ""


__all__ = ["PushSigner", "SignedPush", "build_xml", "event_push", "escape", "signature", "text_push"]
