"""Checking in at the venue by scanning its QR code in the Official Account, and the entry bots."""

import itertools
import time

import pytest
from sqlalchemy import func, select

from server.extensions import db
from server.models import AuditEntry, Person
from server.timeutil import fmt_local
from server.wechat.simulator.push import event_push
from tests.api import bearer, make_world
from tests.competition_helpers import entrant, entry_of, make_competition, sign_up

from .conftest import reply_text

_clock = itertools.count(int(time.time()))


@pytest.fixture
def world():
    return make_world()


def scan(pusher, openid: str, scene: str, event: str = "SCAN") -> str:
    """A SCAN push (or a follow through the QR code with ``event="subscribe"``), each at its own CreateTime."""
    key = scene if event == "SCAN" else f"qrscene_{scene}"
    response = pusher.post(event_push(openid, event, key=key, CreateTime=next(_clock)))
    assert response.status_code == 200, response.data
    return reply_text(response.plain)


def test_a_scan_checks_in_once_however_often_it_is_repeated(client, pusher, world):
    comp = make_competition(world)
    person, token = entrant(world, oa_openid="oWelder")
    sign_up(client, token, comp.id)
    answer = scan(pusher, "oWelder", f"checkin:{comp.id}")
    assert "签到成功" in answer and comp.name in answer and entry_of(person, comp.id).candidate_number in answer
    checked_at = entry_of(person, comp.id).checked_in_at
    for _ in range(2):
        again = scan(pusher, "oWelder", f"checkin:{comp.id}")
        assert "已签到" in again and "重复扫码" in again and "签到成功" not in again
        assert f"首次签到时间：{fmt_local(checked_at, '%m月%d日 %H:%M')}" in again
    entry = entry_of(person, comp.id)
    assert entry.checked_in_at == checked_at and entry.checked_in_via == "wechat"
    assert db.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "competition_entry.check_in")) == 1


def test_refusals_are_explained(client, pusher, world):
    comp = make_competition(world, capacity=1)
    other = make_competition(world, name="另一场竞赛")
    db.add(Person(oa_openid="oFollower", oa_subscribed=True))
    db.commit()
    assert "绑定" in scan(pusher, "oFollower", f"checkin:{comp.id}")
    _, stranger = entrant(world, oa_openid="oStranger")
    assert "没有报名" in scan(pusher, "oStranger", f"checkin:{comp.id}")
    sign_up(client, stranger, other.id)
    answer = scan(pusher, "oStranger", f"checkin:{comp.id}")
    assert "另一场竞赛" in answer and "对应赛场" in answer
    _, quitter = entrant(world, oa_openid="oQuitter")
    sign_up(client, quitter, comp.id)
    client.delete(f"/api/v1/competitions/{comp.id}/entries/mine", headers=bearer(quitter))
    assert "已退赛" in scan(pusher, "oQuitter", f"checkin:{comp.id}")
    _, waiting = entrant(world, oa_openid="oWaiting")
    sign_up(client, stranger, comp.id)
    sign_up(client, waiting, comp.id)
    assert "候补" in scan(pusher, "oWaiting", f"checkin:{comp.id}")
    assert "签到码无效" in scan(pusher, "oStranger", "checkin:abc")
    assert "找不到该竞赛" in scan(pusher, "oStranger", "checkin:99999999999999")


def test_following_through_the_venue_code_checks_in(client, pusher, world):
    comp = make_competition(world)
    person, token = entrant(world, oa_openid="oNewFan")
    sign_up(client, token, comp.id)
    answer = scan(pusher, "oNewFan", f"checkin:{comp.id}", event="subscribe")
    assert "欢迎关注" in answer and "签到成功" in answer
    assert entry_of(person, comp.id).checked_in_at is not None
    answer = scan(pusher, "oUnknown", f"checkin:{comp.id}", event="subscribe")
    assert "欢迎关注" in answer and "绑定" in answer


def test_entry_and_places_bots(client, pusher, world):
    comp = make_competition(world, capacity=1)
    _, first = entrant(world)
    _, token = entrant(world, oa_openid="oQueue")
    sign_up(client, first, comp.id)
    sign_up(client, token, comp.id)
    lines = pusher.say("oQueue", "报名")
    assert comp.name in lines and "候补中（第1位）" in lines
    assert "剩余名额：0" in pusher.say("oQueue", "竞赛")
