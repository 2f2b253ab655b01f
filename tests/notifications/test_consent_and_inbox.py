"""POST /api/v1/me/subscriptions, the OA's subscribe_msg events, and the inbox API."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.extensions import db
from server.models import InboxMessage
from server.services import auth, consent, messages
from tests.api import bearer
from tests.wechat.conftest import Pusher

from .conftest import CONTEXT, make_person


@pytest.fixture
def worker():
    p = make_person()
    token = auth.issue_token(auth.API, {"person_id": p.id}, 3600)
    db.commit()
    return p.id, p.oa_openid, bearer(token)


def test_the_mini_program_reports_consent_results(client, worker):
    person_id, _, headers = worker
    body = {"accepted": ["T1", "T1", "T2"], "rejected": ["T3"], "long_term": ["T4"]}
    answer = client.post("/api/v1/me/subscriptions", json=body, headers=headers)
    assert answer.status_code == 200, answer.json
    client.post("/api/v1/me/subscriptions", json={"accepted": ["T1"]}, headers=headers)
    consents = {c["template_id"]: c for c in client.get("/api/v1/me/subscriptions", headers=headers).json["consents"]}
    assert {t: (c["remaining"], c["long_term"], c["rejected"]) for t, c in consents.items()} == {
        "T1": (2, False, False), "T2": (1, False, False), "T3": (0, False, True), "T4": (0, True, False)}
    assert client.post("/api/v1/me/subscriptions", json={"accepted": "T1"}, headers=headers).status_code == 422
    assert client.post("/api/v1/me/subscriptions", json={"accepted": ["T1"]}).status_code == 401


def test_one_time_consent_allows_exactly_one_message_and_long_term_is_not_used_up(worker):
    person_id = worker[0]
    consent.record_consents(person_id, accepted=["ONE"], long_term=["LONG"])
    assert [consent.consume(person_id, "ONE") for _ in range(3)] == [True, False, False]
    assert all(consent.consume(person_id, "LONG") for _ in range(3)) and consent.remaining(person_id, "LONG") == (0, True)
    assert consent.consume(person_id, "NEVER") is False


POPUP = """<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>
<CreateTime>{ts}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>
<{section}>{items}</{section}></xml>"""


def _push(client, openid, event, section, items, ts):
    xml = POPUP.format(openid=openid, event=event, section=section, items="".join(
        f"<List><TemplateId><![CDATA[{t}]]></TemplateId>{extra}</List>" for t, extra in items), ts=ts)
    assert Pusher(client).post(xml).status_code == 200


def test_official_account_consent_events_update_the_same_ledger(client, worker):
    person_id, openid, _ = worker
    status = "<SubscribeStatusString><![CDATA[{}]]></SubscribeStatusString><PopupScene>2</PopupScene>"
    _push(client, openid, "subscribe_msg_popup_event", "SubscribeMsgPopupEvent",
          [("A", status.format("accept")), ("B", status.format("reject"))], 1700000001)
    _push(client, openid, "subscribe_msg_popup_event", "SubscribeMsgPopupEvent",
          [("A", status.format("accept"))], 1700000002)  # one List element: a dict, not a list
    assert consent.remaining(person_id, "A") == (2, False) and consent.consents_of(person_id)[1]["rejected"]
    _push(client, openid, "subscribe_msg_change_event", "SubscribeMsgChangeEvent",
          [("A", "<SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString>")], 1700000003)
    assert consent.remaining(person_id, "A") == (0, False)
    consent.record_consents(person_id, accepted=["C"])
    db.commit()
    _push(client, openid, "subscribe_msg_sent_event", "SubscribeMsgSentEvent",
          [("C", "<MsgID>1</MsgID><ErrorCode>43101</ErrorCode><ErrorStatus><![CDATA[failed:user refuse]]></ErrorStatus>")],
          1700000004)
    assert consent.remaining(person_id, "C") == (0, False)


def test_an_event_from_a_stranger_changes_nothing(client, worker):
    _push(client, "oa-nobody", "subscribe_msg_popup_event", "SubscribeMsgPopupEvent",
          [("A", "<SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString>")], 1700000005)
    assert consent.consents_of(worker[0]) == []


def test_the_inbox_pages_counts_unread_and_marks_read(client, worker):
    person_id, _, headers = worker
    for n in range(5):
        messages.notify(person_id, "application_submitted", {**CONTEXT, "program": f"项目{n}"}, dedup=str(n))
    other = make_person()
    messages.notify(other.id, "application_submitted", CONTEXT, dedup="x")
    theirs = db.scalar(select(InboxMessage.id).where(InboxMessage.person_id == other.id))
    db.commit()
    page = client.get("/api/v1/me/inbox?limit=2", headers=headers).json
    assert [m["body"][2:5] for m in page["items"]] == ["项目4", "项目3"] and page["unread"] == 5
    rest = client.get(f"/api/v1/me/inbox?limit=3&before_id={page['next_before_id']}", headers=headers).json
    assert [m["body"][2:5] for m in rest["items"]] == ["项目2", "项目1", "项目0"] and rest["next_before_id"] is None
    first = page["items"][0]["id"]
    read = client.post(f"/api/v1/me/inbox/{first}/read", headers=headers)
    assert read.status_code == 200 and read.json["read"] and read.json["read_at"]
    assert client.post(f"/api/v1/me/inbox/{first}/read", headers=headers).json["read_at"] == read.json["read_at"]
    unread = client.get("/api/v1/me/inbox?unread_only=true", headers=headers).json
    assert unread["unread"] == 4 and first not in [m["id"] for m in unread["items"]]
    assert client.post(f"/api/v1/me/inbox/{theirs}/read", headers=headers).status_code == 404
    assert client.post("/api/v1/me/inbox/read-all", headers=headers).json == {"marked": 4, "unread": 0}
    assert client.get("/api/v1/me/inbox", headers=headers).json["unread"] == 0
    assert client.get("/api/v1/me/inbox?limit=0", headers=headers).status_code == 422
