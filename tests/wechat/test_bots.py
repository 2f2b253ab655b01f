"""The bots, as a worker meets them in the Official Account."""

from datetime import timedelta

import pytest
from flask import current_app
from sqlalchemy import select

from server.demo import seed_demo
from server.extensions import db
from server.models import Competition, KeywordReply, Organisation, Person
from server.security import id_check_char
from server.wechat.simulator.push import event_push

WANG_ID = "32010219880512" + "301"
WANG_ID += id_check_char(WANG_ID)


@pytest.fixture
def demo(db_session):
    seed_demo(workers=12)
    org = db_session.scalars(select(Organisation).where(Organisation.kind == "enterprise")).first()
    cipher = current_app.extensions["unionhub"]["id_cipher"]
    wang = Person(real_name="王建国", phone="13912345678", id_number_enc=cipher.encrypt(WANG_ID),
                  id_number_hash=cipher.index(WANG_ID), org_id=org.id, employer=org.employer_name, is_member=True)
    db_session.add(wang)
    db_session.commit()
    return {"wang": wang, "org": org}


def person_by_openid(openid):
    db.expire_all()
    return db.scalars(select(Person).where(Person.oa_openid == openid)).first()


def test_follow_welcomes_and_unfollow_marks_unreachable(pusher, run_jobs, simulator):
    response = pusher.post(event_push("oNew", "subscribe"), "safe")
    from .conftest import reply_text

    assert "欢迎关注" in reply_text(response.plain) and "绑定" in reply_text(response.plain)
    person = person_by_openid("oNew")
    assert person.oa_subscribed and person.oa_subscribed_at is not None
    run_jobs()  # links the follower's unionid through user/info
    assert person_by_openid("oNew").unionid
    response = pusher.post(event_push("oNew", "unsubscribe"))
    assert response.data == b"success"
    person = person_by_openid("oNew")
    assert not person.oa_subscribed and person.oa_unsubscribed_at is not None


def test_follow_links_to_the_mini_program_person_by_unionid(pusher, run_jobs):
    from server.wechat.simulator.identity import identities

    ids = identities("oMiniWorker0001")
    worker = Person(mp_openid=ids["mp_openid"], unionid=ids["unionid"], real_name="李娜")
    db.add(worker)
    db.commit()
    pusher.post(event_push(ids["oa_openid"], "subscribe"))
    run_jobs()
    linked = person_by_openid(ids["oa_openid"])
    assert linked.id == worker.id and linked.mp_openid == ids["mp_openid"] and linked.oa_subscribed
    assert db.scalar(select(Person).where(Person.unionid == ids["unionid"])).id == worker.id


def test_binding_by_name_and_last_digits(pusher, demo):
    pusher.post(event_push("oWang", "subscribe"))
    assert "姓名" in pusher.say("oWang", "绑定")
    assert "后4位" in pusher.say("oWang", "王建国")
    answer = pusher.say("oWang", WANG_ID[-4:])
    assert "绑定成功" in answer and "王建国" in answer
    wang = person_by_openid("oWang")
    assert wang.id == demo["wang"].id and wang.oa_subscribed
    assert db.scalars(select(Person).where(Person.oa_openid == "oWang")).all() == [wang]  # the bare follower is gone
    assert "已绑定" in pusher.say("oWang", "绑定")


def test_binding_limits_wrong_tries(pusher, demo):
    pusher.say("oGuess", "绑定")
    pusher.say("oGuess", "王建国")
    answers = [pusher.say("oGuess", "0000") for _ in range(5)]
    assert "还可尝试" in answers[0]
    assert "次数过多" in answers[-1]
    # Even the right answer is refused now.
    assert "次数过多" in pusher.say("oGuess", "绑定")
    assert person_by_openid("oGuess") is None or not person_by_openid("oGuess").bound


def test_binding_with_a_one_time_code(pusher, demo):
    from server.services.people import issue_binding_code

    code = issue_binding_code(demo["wang"].id)
    assert "绑定成功" in pusher.say("oCode", f"绑定 {code}")
    assert person_by_openid("oCode").id == demo["wang"].id
    assert "无效" in pusher.say("oOther", f"绑定 {code}")  # spent


def test_conversation_can_be_cancelled(pusher, demo):
    pusher.say("oCancel", "绑定")
    assert "已取消" in pusher.say("oCancel", "取消")
    assert "补贴" in pusher.say("oCancel", "帮助")


def test_subsidy_rules_and_progress(pusher, demo):
    rules = pusher.say("oAny", "补贴")
    assert "学历与技能提升补助" in rules and "2,500元" in rules and "剩余名额：2000人" in rules
    assert "先回复“绑定”" in pusher.say("oAny", "申请进度")


def test_competitions_and_sign_up_scene(pusher, demo):
    listing = pusher.say("oAny", "竞赛")
    assert "正在报名" in listing and "报名截止" in listing
    competition = db.scalars(select(Competition).where(Competition.status == "published")).first()
    from .conftest import reply_text

    scan = pusher.post(event_push("oAny", "SCAN", f"comp:{competition.id}", Ticket="T1"))
    text = reply_text(scan.plain)
    assert competition.name in text and "data-miniprogram-path" in text
    follow_scan = pusher.post(event_push("oFresh", "subscribe", f"qrscene_comp:{competition.id}", Ticket="T2"), "safe")
    text = reply_text(follow_scan.plain)
    assert text.startswith("欢迎关注") and competition.name in text
    assert person_by_openid("oFresh").oa_subscribed
    assert "不存在" in reply_text(pusher.post(event_push("oAny", "SCAN", "comp:999999")).plain)


def test_menu_clicks(pusher, demo):
    from .conftest import reply_text

    assert "补贴" in reply_text(pusher.post(event_push("oMenu", "CLICK", "MENU_HELP")).plain)
    assert "12351" in reply_text(pusher.post(event_push("oMenu", "CLICK", "MENU_HOTLINE")).plain)
    assert "正在报名" in reply_text(pusher.post(event_push("oMenu", "CLICK", "MENU_COMPETITION")).plain)


def test_keyword_replies_come_from_the_database(pusher, demo):
    from handlers.wechat.router import invalidate_keyword_cache

    assert "12351" in pusher.say("oKw", "热线")
    db.add(KeywordReply(keyword="^会费", match="regex", reply="会费标准：按工资的0.5%缴纳。", priority=10))
    db.add(KeywordReply(keyword="[坏的正则", match="regex", reply="不会出现", priority=1))
    db.commit()
    invalidate_keyword_cache()
    assert pusher.say("oKw", "会费怎么交") == "会费标准：按工资的0.5%缴纳。"


def test_media_gets_a_polite_answer(pusher):
    from server.wechat.simulator.push import build_xml

    xml = build_xml({"ToUserName": "gh", "FromUserName": "oPic", "CreateTime": 1700000000, "MsgType": "image",
                     "PicUrl": "http://example.invalid/x.jpg", "MediaId": "m1", "MsgId": 5})
    from .conftest import reply_text

    assert "图片" in reply_text(pusher.post(xml).plain)
    assert "没能理解" in pusher.say("oPic", "随便说点什么")


def test_menu_configuration_is_valid_and_created(app, simulator):
    from server.wechat import gateway
    from server.wechat.menu import load_menu, menu_keys

    from handlers.wechat.bots.menu import MENU_ACTIONS

    menu = load_menu(config=app.extensions["unionhub"]["config"])
    handled = set(MENU_ACTIONS) | {"MENU_HELP", "MENU_HOTLINE", "MENU_POLICY", "MENU_SCAN_CHECKIN"}
    assert menu_keys(menu) <= handled
    gateway.create_menu(menu)
    sim = simulator.app.test_client()
    created = sim.get("/cgi-bin/menu/get", query_string={"access_token": gateway.oa_client().access_token}).get_json()
    assert created["menu"]["button"][0]["name"] == "补助申请"


def test_messages_open_the_customer_service_window(pusher, app, demo):
    """A follow allows 3 customer-service messages within a minute, a message 20 within 48 hours; VIEW nothing."""
    from jobs.wechat import store_pushes

    pusher.post(event_push("oWindow", "subscribe"))
    store_pushes()
    followed = person_by_openid("oWindow")
    first, until = followed.oa_last_interaction_at, followed.oa_cs_until
    assert followed.oa_cs_left == 3 and timedelta(seconds=50) < until - first <= timedelta(seconds=61)
    pusher.say("oWindow", "帮助")
    store_pushes()
    wrote = person_by_openid("oWindow")
    assert wrote.oa_last_interaction_at >= first and wrote.oa_cs_left == 20
    assert timedelta(hours=47) < wrote.oa_cs_until - wrote.oa_last_interaction_at <= timedelta(hours=48)
    pusher.post(event_push("oWindow", "VIEW", "https://example.com"))
    store_pushes()
    assert person_by_openid("oWindow").oa_cs_left == 20


def test_a_follow_is_granted_once_by_the_bot_and_the_drain(pusher, app, demo):
    """The follow bot grants the 3 messages at the push's time; the drain's second grant of the same push hands
    nothing back once they are spent."""
    from jobs.wechat import store_pushes
    from server.extensions import db
    from server.services.people import spend_cs

    pusher.post(event_push("oFollowOnce", "subscribe"))
    followed = person_by_openid("oFollowOnce")
    assert followed.oa_cs_left == 3  # before the drain: the bot granted it
    assert [spend_cs(followed.id) for _ in range(4)] == [True, True, True, False]
    db.commit()
    db.remove()  # the drain reads the person afresh, as a worker does
    store_pushes()
    db.remove()
    assert person_by_openid("oFollowOnce").oa_cs_left == 0


def test_sender_independent_listings_are_reused_for_a_while(pusher, demo, app, monkeypatch):
    """补贴 and 竞赛 read the database once per process and period, then answer from memory."""
    from sqlalchemy import event

    from handlers.wechat.router import forget_shared_answers

    monkeypatch.setattr(app.extensions["unionhub"]["config"], "WECHAT_SHARED_ANSWER_SECONDS", 60)
    forget_shared_answers()
    statements = []

    def count(*args):
        statements.append(args[2])

    engine = app.extensions["unionhub"]["engine"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        first = pusher.say("oShared1", "补贴")
        after_first = len(statements)
        second = pusher.say("oShared2", "补贴")
        assert second == first and "学历与技能提升补助" in first
        assert not any("subsidy_programs" in s for s in statements[after_first:])
    finally:
        event.remove(engine, "before_cursor_execute", count)
        forget_shared_answers()
