import pytest

from server.wechat.simulator.push import PushSigner

from ..conftest import TEST_SECRETS


class Pusher:
    """Posts pushes to /wechat as WeChat would, and reads the answers."""

    def __init__(self, client):
        self.client = client
        self.signer = PushSigner(TEST_SECRETS["WECHAT_OA_TOKEN"], TEST_SECRETS["WECHAT_OA_AES_KEY"], TEST_SECRETS["WECHAT_OA_APPID"])

    def post(self, xml: str, mode: str = "plain", **overrides):
        push = self.signer.sign(xml, mode)
        push.query.update(overrides)
        response = self.client.post("/wechat", query_string=push.query, data=push.body, content_type="text/xml")
        response.plain = self.signer.open_reply(push, response.data) if response.status_code == 200 else None
        return response

    def say(self, openid: str, text: str, mode: str = "plain") -> str:
        from server.wechat.simulator.push import text_push

        response = self.post(text_push(openid, text), mode)
        assert response.status_code == 200, response.data
        return reply_text(response.plain)


def reply_text(xml: str) -> str:
    if xml == "success":
        return ""
    import xmltodict

    message = xmltodict.parse(xml)["xml"]
    if message["MsgType"] == "text":
        return message["Content"]
    return message["Articles"]["item"]["Title"]


@pytest.fixture
def pusher(client):
    return Pusher(client)


@pytest.fixture
def slow_subsidy_rules(monkeypatch):
    """Make the 补贴 bot (one that runs under the time budget) take ``seconds`` and answer ``answer``."""
    import time

    from handlers.wechat.bots import subsidies
    from handlers.wechat.router import router

    def _slow(answer: str, seconds: float = 1.2) -> None:
        def slow_rules(ctx):
            time.sleep(seconds)
            return answer

        for rule in router.rules:
            if rule.func is subsidies.subsidy_rules_bot:
                assert not rule.inline  # it reads the database: it runs under the budget
                monkeypatch.setattr(rule, "func", slow_rules)

    return _slow
