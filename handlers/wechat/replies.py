"""Reply specs: the JSON-able form of a bot's answer, rendered to WeChat XML or a customer-service message."""

from __future__ import annotations

import json
import time

from server.wechat.wire import cdata

SUCCESS = None  # answer "success": nothing shown to the user
BUSY_TEXT = "抱歉，系统繁忙，请稍后再试。如需帮助，请回复“帮助”。"
DEFERRED_TEXT = "收到，正在为您查询，结果稍后发送给您。"
MAX_TEXT_BYTES = 2000  # WeChat cuts passive text replies at 2048 bytes


def to_spec(result) -> dict | None:
    """Normalise what a bot returned into {"type": "text"|"news", ...} or None."""
    if result is None:
        return None
    if isinstance(result, str):
        text = result.strip()
        if not text:
            return None
        encoded = text.encode("utf-8")
        if len(encoded) > MAX_TEXT_BYTES:
            text = encoded[: MAX_TEXT_BYTES - 6].decode("utf-8", "ignore") + "……"
        return {"type": "text", "content": text}
    if isinstance(result, list):
        articles = [
            {
                "title": a.get("title", ""),
                "description": a.get("description", ""),
                "url": a.get("url", ""),
                "image": a.get("image", ""),
            }
            for a in result[:1]  # since 2018 WeChat shows one article per passive reply
        ]
        return {"type": "news", "articles": articles} if articles else None
    if isinstance(result, dict) and result.get("type") in ("text", "news"):
        return result
    raise TypeError(f"a bot returned {type(result).__name__}; return str, list of articles, dict spec or None")


def render_xml(spec: dict | None, message: dict) -> str:
    """The passive reply XML for a push (plaintext; the callback encrypts it in safe mode)."""
    if spec is None:
        return "success"
    head = (f"<xml>\n<ToUserName>{cdata(message.get('FromUserName', ''))}</ToUserName>\n"
            f"<FromUserName>{cdata(message.get('ToUserName', ''))}</FromUserName>\n<CreateTime>{int(time.time())}</CreateTime>\n")
    if spec["type"] == "text":
        return head + f"<MsgType><![CDATA[text]]></MsgType>\n<Content>{cdata(spec['content'])}</Content>\n</xml>"
    items = "".join(
        f"<item><Title>{cdata(a.get('title', ''))}</Title><Description>{cdata(a.get('description', ''))}</Description>"
        f"<PicUrl>{cdata(a.get('image', ''))}</PicUrl><Url>{cdata(a.get('url', ''))}</Url></item>"
        for a in spec["articles"]
    )
    return head + f"<MsgType><![CDATA[news]]></MsgType>\n<ArticleCount>{len(spec['articles'])}</ArticleCount>\n<Articles>{items}</Articles>\n</xml>"


def dumps(spec: dict | None) -> str:
    return json.dumps(spec, ensure_ascii=False)


def loads(raw: str | bytes) -> dict | None:
    return json.loads(raw)


def preview(spec: dict | None) -> str | None:
    if spec is None:
        return None
    if spec["type"] == "text":
        return spec["content"][:120]
    return spec["articles"][0]["title"][:120]
