"""Message kinds, template rules, channel choice, notify and quiet hours."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from server.extensions import db
from server.models import InboxMessage, utcnow
from server.services import consent, messages
from server.timeutil import CHINA

from .conftest import CONTEXT, by_channel, rows


def test_every_kind_renders_on_each_of_its_channels():
    for name, kind in messages.KINDS.items():
        for channel in (*kind.channels, "inbox"):
            payload = messages.render(name, channel, {**CONTEXT, "title": "通知", "body": "正文", "competition": "焊工赛",
                                                       "starts": "3月1日", "venue": "技师学院", "result": "一等奖",
                                                       "position": 2, "deadline": "3月1日", "link": "pages/x"})
            assert payload, (name, channel)


def test_template_values_follow_the_2023_rules():
    data, notes = messages.check_data({"thing1": "一" * 30, "time2": "2026-03-01 09:00", "thing3": "两行\n文字"})
    assert data == {"thing1": "一" * 19 + "…", "time2": "2026-03-01 09:00", "thing3": "两行 文字"}
    assert notes == ["thing1: shortened to 20", "thing3: line breaks removed"]
    for bad, reason in [({"phrase1": "超过五个字的状态"}, "phrase1 longer than 5"), ({"first": "x"}, "first is no longer allowed"),
                        ({"remark": "x"}, "remark is no longer allowed"), ({"thing1": " \n "}, "thing1 is empty")]:
        with pytest.raises(messages.TemplateError, match=reason):
            messages.check_data(bad)


def test_refused_template_data_skips_the_channel_with_the_reason(person):
    p = person()
    consent.record_consents(p.id, accepted=[messages.template_id("application_approved", "mp_subscribe")])
    ids = messages.notify(p.id, "application_approved", {**CONTEXT, "state": "状态文字太长了"}, dedup="bad")
    db.commit()
    found = by_channel(p.id)
    assert set(found) == {"mp_subscribe", "oa_template", "oa_custom"} and len(ids) == 3
    assert found["mp_subscribe"].skip_reason == found["oa_template"].skip_reason == "invalid_data: phrase2 longer than 5"
    assert found["oa_custom"].status == "pending"  # plain text has no template rules
    assert consent.remaining(p.id, messages.template_id("application_approved", "mp_subscribe")) == (1, False)


def test_group_bot_content_is_cut_to_its_byte_limit_with_a_note():
    payload = messages.render("announcement_group", "wecom_group", {"title": "通知", "body": "长" * 3000, "msgtype": "text"})
    content = payload["text"]["content"]
    assert len(content.encode()) <= 2048 and content.endswith("（内容过长，已截断）") and payload["notes"] == ["content cut"]
    markdown = messages.render("announcement_group", "wecom_group", {"title": "通知", "body": "短"})
    assert markdown == {"msgtype": "markdown", "markdown": {"content": "**通知**\n短"}}


def test_unknown_kind_is_refused(person):
    with pytest.raises(ValueError, match="unknown message kind"):
        messages.notify(person().id, "no_such_kind", {}, dedup="x")


def test_channel_choice_and_reasons(person):
    kind, now = "application_approved", utcnow()
    tpl = messages.template_id(kind, "mp_subscribe")
    with_consent = person()
    consent.record_consents(with_consent.id, accepted=[tpl])
    assert messages.choose_channel(with_consent, kind, now) == ("mp_subscribe", [])
    assert messages.choose_channel(person(), kind, now) == ("oa_template", [("mp_subscribe", "no_consent")])
    unfollowed = person(oa_subscribed=False)
    assert messages.choose_channel(unfollowed, kind, now) == (None, [
        ("mp_subscribe", "no_consent"), ("oa_template", "not_following"), ("oa_custom", "not_following")])
    mp_only = person(oa_openid=None, mp_openid=None)
    assert messages.choose_channel(mp_only, kind, now)[1][0] == ("mp_subscribe", "no_openid")
    # the customer-service allowance: open until oa_cs_until while messages are left
    stale = person(oa_subscribed=True, oa_cs_until=now - timedelta(seconds=1))
    assert messages.choose_channel(stale, kind, now, after="oa_template") == (None, [("oa_custom", "outside_window")])
    spent = person(oa_cs_left=0)
    assert messages.choose_channel(spent, kind, now, after="oa_template") == (None, [("oa_custom", "outside_window")])
    fresh = person(oa_cs_until=now + timedelta(minutes=1), oa_cs_left=1)
    assert messages.choose_channel(fresh, kind, now, after="oa_template") == ("oa_custom", [])


def test_customer_service_grants_follow_wechats_rules(person):
    """A message allows 20 within 48 hours; a click, scan or follow only 3 within a minute, never shortening a
    longer grant; spending stops at zero and at the end of the window."""
    from server.services.people import CS_EVENT, CS_MESSAGE, grant_cs, spend_cs

    now = utcnow()
    p = person(oa_cs_until=None, oa_cs_left=0)
    grant_cs(p, CS_EVENT, now)
    assert (p.oa_cs_until, p.oa_cs_left) == (now + timedelta(minutes=1), 3)
    grant_cs(p, CS_MESSAGE, now + timedelta(seconds=5))
    assert (p.oa_cs_until, p.oa_cs_left) == (now + timedelta(hours=48, seconds=5), 20)
    grant_cs(p, CS_EVENT, now + timedelta(seconds=10))  # a click does not cut the message's 48 hours short
    assert (p.oa_cs_until, p.oa_cs_left) == (now + timedelta(hours=48, seconds=5), 20)
    p.oa_cs_left = 17
    grant_cs(p, CS_MESSAGE, now + timedelta(seconds=5))  # the same push applied again (late answer, then the drain)
    assert (p.oa_cs_until, p.oa_cs_left) == (now + timedelta(hours=48, seconds=5), 17)
    p.oa_cs_left = 0
    grant_cs(p, CS_EVENT, now + timedelta(seconds=20))  # none left: a click still allows 3 within its minute
    assert (p.oa_cs_until, p.oa_cs_left) == (now + timedelta(seconds=80), 3)
    p.oa_cs_left = 0
    grant_cs(p, CS_EVENT, now + timedelta(seconds=20))  # ... once
    assert (p.oa_cs_until, p.oa_cs_left) == (now + timedelta(seconds=80), 0)
    db.commit()
    q = person(oa_cs_until=now + timedelta(minutes=1), oa_cs_left=2)
    assert [spend_cs(q.id, now) for _ in range(3)] == [True, True, False]
    r = person(oa_cs_until=now - timedelta(seconds=1), oa_cs_left=5)
    assert spend_cs(r.id, now) is False


def test_a_grant_from_a_stale_read_does_not_hand_back_a_spent_message(person, app):
    """The push-log drain may hold the person as read before a late answer granted the same push and spent one
    message on another connection; its grant must not reset the allowance from that stale read."""
    from sqlalchemy import select, update
    from sqlalchemy.orm.attributes import set_committed_value

    from server.models import Person
    from server.services.people import CS_MESSAGE, grant_cs

    now = utcnow()
    p = person(oa_cs_until=None, oa_cs_left=0)
    db.commit()
    with app.extensions["unionhub"]["engine"].begin() as conn:  # the late-answer job: granted, then spent one
        conn.execute(update(Person).where(Person.id == p.id).values(oa_cs_until=now + timedelta(hours=48), oa_cs_left=19))
    set_committed_value(p, "oa_cs_until", None)  # the drain still holds its earlier read
    set_committed_value(p, "oa_cs_left", 0)
    grant_cs(p, CS_MESSAGE, now)
    db.commit()
    assert db.scalar(select(Person.oa_cs_left).where(Person.id == p.id)) == 19
    assert p.oa_cs_left == 19


def test_template_ids_come_from_configuration(config, monkeypatch):
    assert messages.template_id("application_paid", "oa_template") == "oa_template_application_paid"
    monkeypatch.setattr(config, "MESSAGE_TEMPLATE_IDS", "application_paid.oa_template=TPL-PAID, x.y=z")
    assert messages.template_id("application_paid", "oa_template") == "TPL-PAID"


def test_notify_writes_the_inbox_and_one_delivery_and_is_idempotent(person, redis):
    p = person()
    first = messages.notify(p.id, "application_approved", CONTEXT, dedup="7:1")
    db.commit()
    again = messages.notify(p.id, "application_approved", {**CONTEXT, "amount": "9"}, dedup="7:1")
    db.commit()
    assert first == again
    inbox = list(db.scalars(select(InboxMessage).where(InboxMessage.person_id == p.id)))
    assert [(m.title, m.body) for m in inbox] == [("补助申请已核准", "您的技能提升补助申请已核准，核定金额1500.00元，将尽快发放。")]
    found = by_channel(p.id)
    assert found["mp_subscribe"].status == "skipped" and found["mp_subscribe"].skip_reason == "no_consent"
    template = found["oa_template"]
    assert template.status == "pending" and template.not_before is None and template.dedup_key == "application_approved:7:1:oa_template"
    assert template.payload["data"] == {"thing1": "技能提升补助", "phrase2": "已核准", "time3": "2026-03-01 09:00",
                                        "amount4": "1500.00元"}
    assert template.payload["context"]["amount"] == "1500.00"
    assert redis.llen("rq:queue:default") == 1  # enqueued once, after commit


def test_notify_enqueues_nothing_when_rolled_back(person, redis):
    p = person()
    messages.notify(p.id, "application_paid", CONTEXT, dedup="r")
    db.rollback()
    assert rows() == [] and redis.llen("rq:queue:default") == 0


def test_unreachable_worker_gets_the_inbox_copy_only(person, redis):
    p = person(oa_openid=None, mp_openid=None)
    messages.notify(p.id, "application_rejected", CONTEXT, dedup="x")
    db.commit()
    assert {d.channel: d.skip_reason for d in rows()} == {"mp_subscribe": "no_openid", "oa_template": "no_openid",
                                                         "oa_custom": "no_openid"}
    assert db.scalar(select(InboxMessage.title)) == "补助申请未通过" and redis.llen("rq:queue:default") == 0


@pytest.mark.parametrize(("local", "urgent", "expected"), [
    ("2026-03-02 22:15", False, "2026-03-03 08:00"),
    ("2026-03-02 03:00", False, "2026-03-02 08:00"),
    ("2026-03-02 21:30", False, "2026-03-03 08:00"),
    ("2026-03-02 08:00", False, None),
    ("2026-03-02 12:00", False, None),
    ("2026-03-02 23:00", True, None),
])
def test_quiet_until(config, monkeypatch, local, urgent, expected):
    monkeypatch.setattr(config, "QUIET_HOURS", "21:30-08:00")
    now = datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=CHINA).astimezone(timezone.utc)
    until = messages.quiet_until(now, urgent)
    assert (until and until.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")) == expected


def test_quiet_hours_hold_non_urgent_messages_and_let_urgent_ones_through(person, config, monkeypatch, redis):
    monkeypatch.setattr(config, "QUIET_HOURS", "21:30-08:00")
    p = person()
    with freeze_time("2026-03-02 15:00:00"):  # 23:00 in China
        messages.notify(p.id, "application_paid", CONTEXT, dedup="night")
        messages.notify(p.id, "application_expiring", {**CONTEXT, "deadline": "3月3日12:00"}, dedup="night")  # urgent kind
        db.commit()
    held = by_channel(p.id)
    paid = next(d for d in rows(kind="application_paid") if d.status == "pending")
    expiring = next(d for d in rows(kind="application_expiring") if d.status == "pending")
    assert held and paid.not_before == datetime(2026, 3, 3, 0, 0, tzinfo=timezone.utc)  # 08:00 China
    assert expiring.not_before is None and expiring.urgent
    assert redis.llen("rq:queue:high") == 1 and redis.llen("rq:queue:default") == 0
