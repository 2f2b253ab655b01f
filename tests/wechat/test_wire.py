"""server/wechat/wire.py: the callback's XML parser and message crypto against xmltodict and wechatpy."""

from pathlib import Path

import pytest
import xmltodict
from wechatpy.crypto import WeChatCrypto

from server.wechat.simulator.push import signature
from server.wechat.wire import (
    InvalidAppIdException,
    InvalidSignatureException,
    MessageCrypto,
    cdata,
    parse_xml,
    signature_ok,
)

from ..conftest import TEST_SECRETS

SAMPLES = sorted((Path(__file__).resolve().parents[3] / "shared" / "wechat-samples").glob("*.xml"))
TOKEN, AES_KEY, APPID = TEST_SECRETS["WECHAT_OA_TOKEN"], TEST_SECRETS["WECHAT_OA_AES_KEY"], TEST_SECRETS["WECHAT_OA_APPID"]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_every_platform_sample_parses_as_xmltodict_does(sample):
    raw = sample.read_bytes()
    assert parse_xml(raw) == xmltodict.parse(raw, disable_entities=True)
    assert parse_xml(raw.decode()) == parse_xml(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b"<xml><A> padded </A><B></B><C><![CDATA[ x ]]></C></xml>",
        b"<xml><List><item>1</item><item>2</item><item><T>3</T></item></List><E/></xml>",
        b'<xml kind="a"><A id="1">t</A><B>mixed<C>c</C>tail</B></xml>',
        "<xml><Content><![CDATA[中文 ]]>]]&gt;</Content><N>&amp;&lt;</N></xml>".encode(),
        b'<xml><A id="1"/><B>  </B><C><D/></C><F x="1"><G>g</G></F><H>a<I/>  b  </H><J>&#20013;&#x6587;</J></xml>',
        b"<xml/>",
        b"<xml>top</xml>",
        b'<?xml version="1.0" encoding="UTF-8"?>\n<xml>\n  <A>1</A>\n  <A>2</A>\n  <A>3</A>\n</xml>\n',
    ],
)
def test_shapes_match_xmltodict(raw):
    assert parse_xml(raw) == xmltodict.parse(raw, disable_entities=True)


@pytest.mark.parametrize(
    "raw",
    [
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><A>&x;</A></xml>',
        b"<!doctype xml><xml/>",
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><xml><A>&a;</A></xml>'.encode("utf-16"),
    ],
)
def test_dtds_and_entities_are_refused(raw):
    with pytest.raises(ValueError):
        parse_xml(raw)


@pytest.mark.parametrize(
    "raw",
    [
        # a declared single-byte encoding (EBCDIC) must not smuggle a DTD past the scan: the body is read as UTF-8
        '<?xml version="1.0" encoding="cp500"?>'.encode() + '<!DOCTYPE x [<!ENTITY a "b">]><xml/>'.encode("cp500"),
        b"<xml>\xff\xfe</xml>",  # not UTF-8
        b'<w:xml xmlns:w="urn:x"><w:A>1</w:A></w:xml>',  # namespaces: WeChat never sends them
        b"<xml>" + b"<a>" * 20 + b"x" + b"</a>" * 20 + b"</xml>",  # deeper than any push
        b"<xml>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</xml>",
    ],
)
def test_other_encodings_namespaces_and_deep_nesting_are_refused(raw):
    with pytest.raises(ValueError):
        parse_xml(raw)


def test_reply_prefix_is_random_per_message():
    crypto = MessageCrypto(TOKEN, AES_KEY, APPID)
    first, second = crypto.encrypt("<xml/>", "n", "1700000000"), crypto.encrypt("<xml/>", "n", "1700000000")
    assert first != second


def test_malformed_xml_raises():
    for raw in (b"not xml", b"<xml><A>1</A>", b"<xml><A>&undefined;</A></xml>"):
        with pytest.raises(ValueError):
            parse_xml(raw)


def test_cdata_cannot_be_closed_by_the_text():
    text = "a]]>b<c/>"
    assert parse_xml(f"<xml><T>{cdata(text)}</T></xml>")["xml"]["T"] == text


def test_signature_matches_wechats():
    assert signature_ok(TOKEN, signature(TOKEN, "1700000000", "n1", "abc"), "1700000000", "n1", "abc")
    assert not signature_ok(TOKEN, "0" * 40, "1700000000", "n1", "abc")
    assert not signature_ok(TOKEN, "签名", "1700000000", "n1")


def test_crypto_interoperates_with_wechatpy():
    ours, theirs = MessageCrypto(TOKEN, AES_KEY, APPID), WeChatCrypto(TOKEN, AES_KEY, APPID)
    xml = "<xml><Content><![CDATA[你好，世界]]></Content></xml>"
    # Theirs encrypts (as WeChat would), ours decrypts.
    envelope = xmltodict.parse(theirs.encrypt_message(xml, "nonce1", "1700000000"))["xml"]
    assert ours.decrypt(envelope["Encrypt"], envelope["MsgSignature"], "1700000000", "nonce1") == xml
    # Ours encrypts a reply, theirs decrypts and checks its signature.
    reply = ours.encrypt(xml, "nonce2", "1700000001")
    assert theirs.decrypt_message(reply, xmltodict.parse(reply)["xml"]["MsgSignature"], "1700000001", "nonce2") == xml


def test_crypto_refuses_forgeries_and_garbage():
    ours = MessageCrypto(TOKEN, AES_KEY, APPID)
    other_app = WeChatCrypto(TOKEN, AES_KEY, "wx_someone_else")
    envelope = xmltodict.parse(other_app.encrypt_message("<xml/>", "n", "1700000000"))["xml"]
    with pytest.raises(InvalidSignatureException):
        ours.decrypt(envelope["Encrypt"], "0" * 40, "1700000000", "n")
    with pytest.raises(InvalidAppIdException):
        ours.decrypt(envelope["Encrypt"], envelope["MsgSignature"], "1700000000", "n")
    for garbage in ("bm90IGEgY2lwaGVydGV4dA==", "!!!", ""):
        with pytest.raises(ValueError):
            ours.decrypt(garbage, signature(TOKEN, "1700000000", "n", garbage), "1700000000", "n")
    blocks = "A" * 64  # whole AES blocks of nothing: refused, whichever check it fails
    with pytest.raises((ValueError, InvalidAppIdException)):
        ours.decrypt(blocks, signature(TOKEN, "1700000000", "n", blocks), "1700000000", "n")
    with pytest.raises(ValueError):
        ours.decrypt({"nested": "x"}, "", "1700000000", "n")
