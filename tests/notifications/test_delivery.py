"""jobs.delivery: sending, results, retries, fall-back, at most once, the sweep, receipts, group bots."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select, update

from jobs.delivery import send_deliveries, sweep_deliveries
from jobs.queues import enqueue, get_queue
from server.extensions import db
from server.models import Delivery, Organisation, OrgWebhook, Person, utcnow
from server.services import consent, messages
from tests.wechat.conftest import Pusher

from .conftest import CONTEXT, by_channel, rows

KIND = "application_approved"
MP_TPL = "mp_subscribe_application_approved"


def notify(p, dedup="1", kind=KIND, **context) -> list[int]:
    ids = messages.notify(p.id, kind, {**CONTEXT, **context}, dedup=dedup)
    db.commit()
    return ids


def pending(p) -> Delivery:
    return next(d for d in rows(person_id=p.id) if d.status != "skipped")


def test_a_template_message_is_sent_once_with_its_msgid(person, sim, run_jobs):
    p = person()
    notify(p)
    assert run_jobs()["failed"] == 0
    sent = by_channel(p.id)["oa_template"]
    [message] = sim.messages(touser=p.oa_openid)
    assert sent.status == "sent" and sent.attempts == 1 and sent.wechat_msgid == str(message["id"]) and sent.sent_at
    assert message["api"] == "message/template/send" and message["template_id"] == "oa_template_application_approved"
    assert message["payload"]["data"]["thing1"] == {"value": "技能提升补助"}
    assert message["payload"]["miniprogram"]["pagepath"] == "pages/subsidy/application?id=7"


def test_enqueued_twice_and_run_twice_sends_once(person, sim, run_jobs):
    p = person()
    [_, delivery_id] = notify(p)
    enqueue(send_deliveries, [delivery_id])
    enqueue(send_deliveries, [delivery_id, delivery_id])
    run_jobs()
    assert send_deliveries([delivery_id]) == {}
    assert len(sim.messages(touser=p.oa_openid)) == 1 and rows(id=delivery_id)[0].attempts == 1


def test_a_subscribe_message_spends_one_consent(person, sim, run_jobs):
    p = person()
    consent.record_consents(p.id, accepted=[MP_TPL])
    db.commit()
    notify(p, "a")
    run_jobs()
    assert by_channel(p.id)["mp_subscribe"].status == "sent"
    [sent] = sim.messages(touser=p.mp_openid)
    assert sent["api"] == "message/subscribe/send" and sent["miniprogram_state"] == "formal"  # WECHAT_MINIPROGRAM_STATE
    assert consent.remaining(p.id, MP_TPL) == (0, False)
    notify(p, "b")  # nothing left: the template message instead
    run_jobs()
    assert [(d.channel, d.status, d.skip_reason) for d in rows(person_id=p.id) if d.dedup_key.startswith(f"{KIND}:b:")] == [
        ("mp_subscribe", "skipped", "no_consent"), ("oa_template", "sent", None)]


def test_consent_used_up_before_the_send_falls_back_with_the_reason(person, sim, run_jobs):
    p = person()
    consent.record_consents(p.id, accepted=[MP_TPL])
    db.commit()
    notify(p, "a"), notify(p, "b")  # both planned on the one consent
    run_jobs()
    assert [(d.dedup_key.split(":")[1], d.channel, d.status, d.skip_reason) for d in rows(person_id=p.id)] == [
        ("a", "mp_subscribe", "sent", None), ("b", "mp_subscribe", "skipped", "no_consent"),
        ("b", "oa_template", "sent", None)]
    assert len(sim.messages(touser=p.mp_openid)) == 1 and len(sim.messages(touser=p.oa_openid)) == 1


def test_43101_is_recorded_withdraws_the_consent_and_falls_back(person, sim, run_jobs):
    sim.configure(enforce_consent=True)  # WeChat holds no consent for this worker, whatever our ledger says
    p = person()
    consent.record_consents(p.id, accepted=[MP_TPL, MP_TPL])
    db.commit()
    notify(p)
    run_jobs()
    found = by_channel(p.id)
    assert (found["mp_subscribe"].status, found["mp_subscribe"].error_code) == ("failed", 43101)
    assert found["oa_template"].status == "sent" and len(sim.messages()) == 1
    assert consent.remaining(p.id, MP_TPL) == (0, False)


def test_unfollowed_before_the_send_skips_and_falls_back_to_nothing(person, sim, run_jobs):
    p = person()
    notify(p)
    p.oa_subscribed = False
    db.commit()
    run_jobs()
    found = by_channel(p.id)
    assert (found["oa_template"].status, found["oa_template"].skip_reason) == ("skipped", "not_following")
    assert found["oa_custom"].skip_reason == "not_following" and sim.messages() == []


def test_customer_service_text_only_inside_the_window(person, sim, run_jobs):
    inside, outside = person(), person(oa_cs_until=utcnow() - timedelta(hours=2))
    sim.add_fault("message/template/send", errcode=43004, count=2)  # WeChat says they unfollowed: try the next channel
    notify(inside, "1")
    notify(outside, "2")
    run_jobs()
    assert by_channel(inside.id)["oa_custom"].status == "sent"
    assert [m["api"] for m in sim.messages(touser=inside.oa_openid)] == ["message/custom/send"]
    assert by_channel(outside.id)["oa_custom"].skip_reason == "outside_window"
    assert by_channel(outside.id)["oa_template"].error_code == 43004 and sim.messages(touser=outside.oa_openid) == []
    assert db.get(Person, inside.id).oa_cs_left == 19  # the send spent one message of WeChat's allowance


def test_customer_service_allowance_is_spent_and_then_skipped(person, sim, run_jobs):
    """After a click WeChat allows only a few messages: once they are spent, the channel is skipped."""
    p = person(oa_cs_left=1)
    sim.add_fault("message/template/send", errcode=43004, count=4)
    notify(p, "1")
    notify(p, "2")
    run_jobs()
    custom = sorted((d for d in rows() if d.person_id == p.id and d.channel == "oa_custom"), key=lambda d: d.id)
    assert [(d.status, d.skip_reason) for d in custom] == [("sent", None), ("skipped", "outside_window")]
    assert len(sim.messages(touser=p.oa_openid)) == 1 and db.get(Person, p.id).oa_cs_left == 0


@pytest.mark.parametrize("errcode", [40003, 47003, 40037])
def test_permanent_errors_are_recorded_and_not_retried(person, sim, run_jobs, errcode):
    p = person()
    sim.add_fault("message/template/send", errcode=errcode, count=5)
    notify(p)
    run_jobs()
    row = pending(p)
    assert (row.status, row.error_code, row.attempts, row.not_before) == ("failed", errcode, 1, None)
    assert sweep_deliveries()["enqueued"] == 0 and send_deliveries([row.id]) == {}
    assert sim.stats()["requests"]["message/template/send"] == 1


@pytest.mark.parametrize(("fault", "code"), [({"errcode": -1}, -1), ({"errcode": 45011}, 45011),
                                             ({"http_status": 503}, None)])
def test_transient_errors_back_off_then_succeed(person, sim, run_jobs, fault, code, config):
    p = person()
    sim.add_fault("message/template/send", count=1, **fault)
    notify(p)
    before = utcnow()
    run_jobs()
    row = pending(p)
    assert (row.status, row.error_code, row.attempts) == ("pending", code, 1)
    # The back-off counts from the failed send, which happened after ``before`` and by the time it was recorded
    # (both bounds hold however long a slowed host takes between the steps).
    retry = timedelta(seconds=config.DELIVERY_RETRY_SECONDS)
    assert before + retry <= row.not_before <= row.updated_at + retry
    with freeze_time(row.not_before - timedelta(seconds=1)):  # a second early, on any host
        assert send_deliveries([row.id]) == {} and sim.messages() == []  # not due yet
    db.execute(update(Delivery).where(Delivery.id == row.id).values(not_before=utcnow() - timedelta(seconds=1)))
    db.commit()
    assert sweep_deliveries() == {"unknown": 0, "enqueued": 1}
    assert sweep_deliveries()["enqueued"] == 0  # that batch is already queued
    run_jobs()
    row = pending(p)
    assert (row.status, row.attempts) == ("sent", 2) and len(sim.messages()) == 1


def test_back_off_doubles_and_gives_up_after_the_last_attempt(person, sim, config, monkeypatch):
    monkeypatch.setattr(config, "DELIVERY_MAX_ATTEMPTS", 3)
    p = person()
    sim.add_fault("message/template/send", errcode=-1, count=10)
    notify(p)
    delays = []
    for _ in range(3):
        row = pending(p)
        db.execute(update(Delivery).where(Delivery.id == row.id).values(not_before=None))
        db.commit()
        send_deliveries([row.id])
        row = pending(p)  # the back-off counts from the failed send, recorded (updated_at) just after it
        delays.append(row.not_before and round((row.not_before - row.updated_at).total_seconds() / config.DELIVERY_RETRY_SECONDS))
    assert delays == [1, 2, None]
    assert (row.status, row.attempts, row.error_code) == ("failed", 3, -1)
    assert row.error_message.startswith("gave up after 3 attempts")


def test_a_rejected_token_is_refreshed_once_and_the_send_retried(person, sim, app, run_jobs):
    p = person()
    notify(p, "warm")
    run_jobs()
    issued = sim.token_count(app.config["WECHAT_OA_APPID"])
    sim.expire_tokens()
    notify(p, "cold")
    run_jobs()
    assert [d.status for d in rows(person_id=p.id) if d.status != "skipped"] == ["sent", "sent"]
    assert sim.token_count(app.config["WECHAT_OA_APPID"]) == issued + 1


def test_a_stale_sending_row_becomes_unknown_and_is_never_resent(person, sim):
    p = person()
    [_, delivery_id] = notify(p)
    db.execute(update(Delivery).where(Delivery.id == delivery_id)
               .values(status="sending", claimed_at=utcnow() - timedelta(seconds=30), attempts=1))
    db.commit()
    assert sweep_deliveries()["unknown"] == 0  # within the 120 s lease
    db.execute(update(Delivery).where(Delivery.id == delivery_id).values(claimed_at=utcnow() - timedelta(seconds=121)))
    db.commit()
    assert sweep_deliveries() == {"unknown": 1, "enqueued": 0}
    assert send_deliveries([delivery_id]) == {} and sim.messages() == []
    row = rows(id=delivery_id)[0]
    assert row.status == "unknown" and "not retried" in row.error_message


def test_the_sweep_sends_held_and_lost_rows_once_due(person, sim, run_jobs, config, monkeypatch):
    p = person()
    monkeypatch.setattr(config, "QUIET_HOURS", "00:00-23:59")
    [_, held] = notify(p, "held")
    monkeypatch.setattr(config, "QUIET_HOURS", "00:00-00:00")
    assert send_deliveries([held]) == {} and sweep_deliveries()["enqueued"] == 0  # held until morning
    db.execute(update(Delivery).where(Delivery.id == held).values(not_before=utcnow() - timedelta(seconds=1)))
    # a row whose job was lost (Redis down when it was enqueued): pending with no hold, untouched for minutes
    lost = notify(p, "lost")[-1]
    db.execute(update(Delivery).where(Delivery.id == lost).values(updated_at=utcnow() - timedelta(minutes=5)))
    db.commit()
    get_queue().empty()  # both jobs are gone
    assert sweep_deliveries() == {"unknown": 0, "enqueued": 2}
    run_jobs()
    assert {rows(id=i)[0].status for i in (held, lost)} == {"sent"} and len(sim.messages()) == 2


def test_a_broken_payload_is_recorded_and_the_worker_goes_on(person, sim):
    p, q = person(), person()
    [_, bad] = notify(p, "bad")
    [_, good] = notify(q, "good")
    db.execute(update(Delivery).where(Delivery.id == bad).values(payload={"data": {}}))
    db.commit()
    assert send_deliveries([bad, good]) == {"failed": 1, "sent": 1}
    assert rows(id=bad)[0].error_message == "KeyError: 'template_id'" and len(sim.messages()) == 1


# -- receipts ------------------------------------------------------------------------------------

RECEIPT = """<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>
<CreateTime>{ts}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>
<MsgID>{msgid}</MsgID><Status><![CDATA[{status}]]></Status></xml>"""


@pytest.mark.parametrize(("status", "expected"), [("success", "delivered"), ("failed:user block", "blocked"),
                                                   ("failed: system failed", "failed")])
def test_template_receipts_mark_the_delivery(person, run_jobs, client, status, expected):
    p = person()
    notify(p)
    run_jobs()
    row = pending(p)
    xml = RECEIPT.format(openid=p.oa_openid, ts=1700000000, msgid=row.wechat_msgid, status=status)
    assert Pusher(client).post(xml).status_code == 200
    row = pending(p)
    assert row.status == expected and (row.error_message == status if expected == "failed" else row.error_message is None)


# -- WeCom group bots ----------------------------------------------------------------------------

@pytest.fixture
def org():
    organisation = Organisation(kind="enterprise", name="江城机械厂工会")
    db.add(organisation)
    db.commit()
    return organisation


def group_post(org_id, dedup="1", **context):
    delivery_id = messages.notify_group(org_id, "announcement_group", {"title": "停电通知", "body": "明天停电", **context}, dedup)
    db.commit()
    return delivery_id


def test_a_group_bot_post_is_sent_to_the_webhook(org, sim, run_jobs):
    db.add(OrgWebhook(org_id=org.id, webhook_key="key-1", msgtype="markdown"))
    db.commit()
    delivery_id = group_post(org.id)
    assert group_post(org.id) == delivery_id  # once per dedup
    run_jobs()
    [message] = sim.messages(api="webhook/send")
    assert message["webhook_key"] == "key-1" and message["payload"]["markdown"]["content"] == "**停电通知**\n明天停电"
    assert rows(id=delivery_id)[0].status == "sent"


def test_group_bot_errors_are_reported_on_the_delivery_and_the_webhook(org, sim, run_jobs):
    db.add(OrgWebhook(org_id=org.id, webhook_key="key-bad"))
    db.commit()
    sim.set_webhook_failure("key-bad", 93000)
    delivery_id = group_post(org.id, msgtype="text")
    assert run_jobs()["failed"] == 0
    row = rows(id=delivery_id)[0]
    assert (row.status, row.error_code) == ("failed", 93000)
    db.expire_all()
    assert db.scalar(select(OrgWebhook.last_error).where(OrgWebhook.org_id == org.id)).startswith("93000")


def test_no_active_webhook_is_skipped_with_the_reason(org, run_jobs):
    delivery_id = group_post(org.id)
    run_jobs()
    row = rows(id=delivery_id)[0]
    assert (row.status, row.skip_reason) == ("skipped", "no_webhook")


def test_group_bot_posts_stay_within_the_per_minute_limit(org, sim, config, monkeypatch):
    monkeypatch.setattr(config, "WECOM_BOT_PER_MINUTE", 600)  # one every 0.1 s, so the test is quick
    db.add(OrgWebhook(org_id=org.id, webhook_key="key-fast"))
    db.commit()
    ids = [group_post(org.id, str(n)) for n in range(6)]
    start = time.monotonic()
    assert send_deliveries(ids) == {"sent": 6}
    assert time.monotonic() - start >= 0.45  # burst 1: six posts need five refills of 0.1 s
