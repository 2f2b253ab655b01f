"""Scores, ranking, publication for a public notice (公示), objections and final results."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from freezegun import freeze_time
from sqlalchemy import select

from jobs.competition_reminders import finalize_results
from server.extensions import db
from server.models import InboxMessage
from server.services.competition_results import final_score, mask_name, practical_score, rank
from tests.api import assert_error, bearer, staff_login
from tests.competition_helpers import entrant, make_competition

from .conftest import BASE

D = Decimal


def _put(client, headers, cid, entry_id, **body):
    return client.put(f"{BASE}/{cid}/entries/{entry_id}/scores", json=body, headers=headers)


def _post(client, headers, cid, path, **body):
    return client.post(f"{BASE}/{cid}/{path}", json=body, headers=headers)


def _judges(*scores):
    return [{"judge": f"{n}号评委", "score": s} for n, s in enumerate(scores, 1)]


def _inbox(person_id: int) -> list[tuple[str, str]]:
    return list(db.execute(select(InboxMessage.title, InboxMessage.body).where(InboxMessage.person_id == person_id)
                           .order_by(InboxMessage.id)))


def test_arithmetic_ranking_and_masking():
    assert practical_score([D("80"), D("95"), D("85"), D("90")], True) == D("87.50")  # 80 and 95 dropped
    assert practical_score([D("80"), D("95")], True) == D("87.50")  # fewer than 3 judges: nothing dropped
    assert practical_score([D("88.33"), D("88.34"), D("88.34")], False) == D("88.34")  # 88.3366… half-up
    assert practical_score([D("0.01"), D("0.02")], False) == D("0.02")  # 0.015 rounds half-up
    assert practical_score([], True) is None
    assert final_score(D("90"), D("87.50"), 40, 60) == D("88.50")
    assert final_score(D("77.77"), D("66.66"), 30, 70) == D("69.99")  # 23.331 + 46.662 = 69.993
    assert final_score(None, D("80"), 40, 60) is None and final_score(None, D("80"), 0, 100) == D("80.00")
    rows = rank([{"id": i, "final": f, "practical": p} for i, f, p in
                 [(1, D("88"), D("85")), (2, D("90"), D("90")), (3, D("88"), D("90")), (4, None, None),
                  (5, D("88"), D("90"))]])
    assert [(r["id"], r["rank"]) for r in rows] == [(2, 1), (3, 2), (5, 2), (1, 4), (4, None)]
    assert [mask_name(n) for n in ("张三明", "李四", "欧阳娜娜", "王", None)] == ["张*明", "李*", "欧**娜", "*", "*"]


def test_scores_lock_publish_object_correct_and_finalize(client, world, organiser, field, run_jobs):
    f = field(5, arrived=4)
    cid, (a, b, c, d, e) = f.competition_id, [f.entry(i) for i in range(5)]
    scoring = client.get(f"{BASE}/{cid}/scoring", headers=organiser).get_json()
    assert (scoring["state"], scoring["drop_extremes"], scoring["theory_weight"]) == ("scoring", False, 40)
    assert client.patch(f"{BASE}/{cid}/scoring", json={"drop_extremes": True}, headers=organiser).get_json()[
        "drop_extremes"] is True

    row = _put(client, organiser, cid, a, theory=90, practical=_judges(90, 90, 90)).get_json()
    assert (row["theory"], row["practical"], row["final"], row["rank"]) == ("90.00", "90.00", "90.00", 1)
    _put(client, organiser, cid, b, theory=85, practical=_judges(92.5, 90, 85.5))
    _put(client, organiser, cid, c, theory="92.5")
    row = _put(client, organiser, cid, c, practical=_judges(85, 85, 85)).get_json()  # theory kept
    assert (row["theory"], row["final"]) == ("92.50", "88.00")
    _put(client, organiser, cid, d, practical=_judges(89, 90, 91))
    # D came but has no theory score yet: the scores cannot be locked.
    body = assert_error(_post(client, organiser, cid, "scores/lock"), 409, "scores_incomplete", current_state="scoring")
    assert body["entry_ids"] == [d]
    _put(client, organiser, cid, d, theory=85)
    assert _post(client, organiser, cid, "scores/lock").get_json()["state"] == "locked"
    assert_error(_put(client, organiser, cid, a, theory=10), 409, "invalid_state", current_state="locked")
    assert_error(client.patch(f"{BASE}/{cid}/scoring", json={"drop_extremes": False}, headers=organiser), 409,
                 "invalid_state", current_state="locked")

    results = client.get(f"{BASE}/{cid}/results", headers=organiser).get_json()
    assert [(r["entry_id"], r["rank"], r["final"]) for r in results["rows"]] == [
        (a, 1, "90.00"), (b, 2, "88.00"), (d, 2, "88.00"), (c, 4, "88.00"), (e, None, None)]
    assert results["rows"][0]["judge_scores"][0] == {"judge": "1号评委", "score": "90.00"}
    assert results["rows"][0]["id_number_masked"].count("*") == 11 and results["rows"][4]["checked_in"] is False

    token_a, token_c = f.people[0][1], f.people[2][1]
    assert_error(client.get(f"/api/v1/competitions/{cid}/results", headers=bearer(token_a)), 409,
                 "results_not_published", current_state="locked")
    assert_error(_post(client, organiser, cid, "results/finalize"), 409, "invalid_state", current_state="locked")
    published = _post(client, organiser, cid, "results/publish", notice_days=5).get_json()
    assert (published["state"], published["publication"]) == ("published", 1)
    ends = datetime.fromisoformat(published["notice_ends_at"])
    assert timedelta(days=4, hours=23) < ends - datetime.now(timezone.utc) <= timedelta(days=5)
    assert run_jobs()["failed"] == 0
    assert "第1名，总成绩90.00分" in _inbox(f.people[0][0].id)[-1][1]
    assert "第4名" in _inbox(f.people[2][0].id)[-1][1] and "公示至" in _inbox(f.people[2][0].id)[-1][1]
    assert "未取得有效成绩" in _inbox(f.people[4][0].id)[-1][1]

    mine = client.get(f"/api/v1/competitions/{cid}/results", headers=bearer(token_a)).get_json()
    assert [r["name"] for r in mine["rows"]] == ["张*明", "李*", "王*", "欧**娜", "张*明"]
    assert [r["mine"] for r in mine["rows"]] == [True, False, False, False, False]
    assert mine["mine"]["rank"] == 1 and mine["can_object"] is True and mine["state"] == "published"
    anonymous = client.get(f"/api/v1/competitions/{cid}/results").get_json()
    assert anonymous["mine"] is None and anonymous["can_object"] is False and "real_name" not in str(anonymous)

    objection = client.post(f"/api/v1/competitions/{cid}/objections", json={"text": "  理论成绩漏计一道大题  "},
                            headers=bearer(token_c))
    assert objection.status_code == 201, objection.get_json()
    oid = objection.get_json()["id"]
    assert objection.get_json()["text"] == "理论成绩漏计一道大题" and objection.get_json()["status"] == "open"
    assert_error(client.post(f"/api/v1/competitions/{cid}/objections", json={"text": "再提一次"}, headers=bearer(token_c)),
                 409, "already_objected", current_state="published")
    assert client.get(f"/api/v1/competitions/{cid}/results", headers=bearer(token_c)).get_json()["can_object"] is False
    assert_error(_post(client, organiser, cid, "results/finalize"), 409, "notice_period_running",
                 current_state="published")
    listed = client.get(f"{BASE}/{cid}/objections?status=open", headers=organiser).get_json()
    assert [(o["id"], o["real_name"], o["entry_id"]) for o in listed] == [(oid, "欧阳娜娜", c)]

    # Upheld: the scores reopen; corrected, locked and published again for a new notice period.
    decided = _post(client, organiser, cid, f"objections/{oid}/decision", decision="upheld", answer="经复核，理论成绩漏计5分")
    assert decided.get_json()["status"] == "upheld"
    assert_error(_post(client, organiser, cid, f"objections/{oid}/decision", decision="dismissed", answer="x"), 409,
                 "invalid_state", current_state="upheld")
    assert client.get(f"{BASE}/{cid}/scoring", headers=organiser).get_json()["state"] == "scoring"
    assert _put(client, organiser, cid, c, theory=95).get_json()["final"] == "89.00"
    _post(client, organiser, cid, "scores/lock")
    assert _post(client, organiser, cid, "results/publish").get_json()["publication"] == 2
    run_jobs()
    titles = [t for t, _ in _inbox(f.people[2][0].id)]
    assert titles.count("比赛成绩公布") == 2 and "成绩异议答复" in titles
    assert "第2名" in _inbox(f.people[2][0].id)[-1][1]
    # The worker may object again in the new notice period.
    assert client.get(f"/api/v1/competitions/{cid}/results", headers=bearer(token_c)).get_json()["can_object"] is True

    # After the notice period the sweep makes the results final; then no more objections.
    with freeze_time(datetime.now(timezone.utc) + timedelta(days=8)):
        assert finalize_results() == [cid]
        assert finalize_results() == []
        assert_error(client.post(f"/api/v1/competitions/{cid}/objections", json={"text": "太晚了"},
                                 headers=bearer(token_a)), 409, "not_in_notice_period", current_state="final")
    run_jobs()
    assert "最终成绩" in _inbox(f.people[0][0].id)[-1][1]
    final = client.get(f"/api/v1/competitions/{cid}/results", headers=bearer(token_a)).get_json()
    assert final["state"] == "final" and final["finalized_at"] and final["can_object"] is False


def test_open_objection_blocks_the_sweep_until_answered(client, world, organiser, field, run_jobs):
    f = field(2, arrived=2)
    cid = f.competition_id
    for n in range(2):
        _put(client, organiser, cid, f.entry(n), theory=80 + n, practical=_judges(70))
    _post(client, organiser, cid, "scores/lock")
    _post(client, organiser, cid, "results/publish", notice_days=1)
    oid = client.post(f"/api/v1/competitions/{cid}/objections", json={"text": "请复核"},
                      headers=bearer(f.people[0][1])).get_json()["id"]
    with freeze_time(datetime.now(timezone.utc) + timedelta(days=2)):
        assert finalize_results() == []
        assert_error(_post(client, organiser, cid, "results/finalize"), 409, "objections_open",
                     current_state="published")
        assert _post(client, organiser, cid, f"objections/{oid}/decision", decision="dismissed",
                     answer="成绩无误").status_code == 200
        assert _post(client, organiser, cid, "results/finalize").get_json()["state"] == "final"
    run_jobs()
    assert any("异议不成立" in body for _, body in _inbox(f.people[0][0].id))


def test_bad_input_roles_scope_and_states(client, world, organiser, field):
    f = field(3, arrived=2)
    cid, entry = f.competition_id, f.entry(0)
    for body, bad in [({"theory": 101}, "theory"), ({"theory": 88.555}, "theory"), ({"theory": "NaN"}, "theory"),
                      ({"theory": "高分"}, "theory"), ({}, "theory"), ({"extra": 1}, "extra"),
                      ({"practical": "x"}, "practical"), ({"practical": [{"judge": "", "score": 1}]}, "practical"),
                      ({"practical": _judges(80) + [{"judge": "1号评委", "score": 70}]}, "practical"),
                      ({"practical": [{"judge": "甲", "score": -1}]}, "practical")]:
        errors = assert_error(_put(client, organiser, cid, entry, **body), 422, "validation_error")["errors"]
        assert bad in errors and any("\u4e00" <= ch <= "\u9fff" for ch in str(errors[bad])), errors
    response = client.put(f"{BASE}/{cid}/entries/{entry}/scores", data="[1]", content_type="application/json",
                          headers=organiser)
    assert response.status_code == 422
    assert_error(_put(client, organiser, cid, 999999, theory=1), 404, "not_found")
    too_big = client.put(f"{BASE}/{cid}/entries/99999999999/scores", json={"theory": 1}, headers=organiser)
    assert too_big.status_code == 404
    other = make_competition(world, name="另一场竞赛")
    assert_error(_put(client, organiser, other.id, entry, theory=1), 404, "not_found")
    west = bearer(staff_login(client, "west_organiser"))
    assert_error(_put(client, west, cid, entry, theory=1), 404, "not_found")
    assert_error(client.get(f"{BASE}/{cid}/results", headers=west), 404, "not_found")
    reviewer = bearer(staff_login(client, "city_reviewer"))
    assert_error(_put(client, reviewer, cid, entry, theory=1), 403, "role_forbidden")
    assert_error(_post(client, reviewer, cid, "scores/lock"), 403, "role_forbidden")
    assert_error(client.get(f"{BASE}/{cid}/objections", headers=reviewer), 403, "role_forbidden")
    assert_error(client.put(f"{BASE}/{cid}/entries/{entry}/scores", json={"theory": 1}), 401, "unauthorized")
    # A withdrawn entrant gets no score.
    assert client.delete(f"/api/v1/competitions/{cid}/entries/mine", headers=bearer(f.people[2][1])).status_code == 200
    assert_error(_put(client, organiser, cid, f.entry(2), theory=1), 409, "entry_not_confirmed",
                 current_state="withdrawn")
    # State machine: each step only from its state.
    assert_error(_post(client, organiser, cid, "results/publish"), 409, "invalid_state", current_state="scoring")
    assert_error(_post(client, organiser, cid, "results/finalize"), 409, "invalid_state", current_state="scoring")
    assert_error(_post(client, organiser, cid, "scores/unlock"), 409, "invalid_state", current_state="scoring")
    for days in (0, 31, "7", None):
        assert_error(_post(client, organiser, cid, "results/publish", notice_days=days) if days is not None else
                     client.post(f"{BASE}/{cid}/results/publish", json={"notice_days": None, "x": 1},
                                 headers=organiser), 422, "validation_error")
    assert_error(client.patch(f"{BASE}/{cid}/scoring", json={"notice_days": 0}, headers=organiser), 422,
                 "validation_error")
    for n in range(2):
        _put(client, organiser, cid, f.entry(n), theory=60, practical=_judges(60))
    assert _post(client, organiser, cid, "scores/lock").get_json()["state"] == "locked"
    assert _post(client, organiser, cid, "scores/unlock").get_json()["state"] == "scoring"
    # Objections: only entrants, only during the notice, valid text.
    token = f.people[0][1]
    assert_error(client.post(f"/api/v1/competitions/{cid}/objections", json={"text": "复核"}, headers=bearer(token)),
                 409, "not_in_notice_period", current_state="scoring")
    for body in ({"text": ""}, {"text": "  "}, {"text": "长" * 501}, {}, {"text": "a\x00b"}, {"text": 5},
                 {"text": "x", "more": 1}):
        assert_error(client.post(f"/api/v1/competitions/{cid}/objections", json=body, headers=bearer(token)), 422,
                     "validation_error")
    _, stranger = entrant(world)
    assert_error(client.post(f"/api/v1/competitions/{cid}/objections", json={"text": "复核"},
                             headers=bearer(stranger)), 409, "not_entered")
    assert_error(client.post(f"/api/v1/competitions/{cid}/objections", json={"text": "复核"}), 401, "unauthorized")
    assert_error(client.get(f"/api/v1/competitions/999999/results"), 404, "not_found")
    assert_error(_post(client, organiser, cid, "objections/999999/decision", decision="upheld", answer="x"), 404,
                 "not_found")
    assert_error(_post(client, organiser, cid, "objections/1/decision", decision="maybe", answer=""), 422,
                 "validation_error")
    assert_error(client.get(f"{BASE}/{cid}/objections?status=lost", headers=organiser), 422, "validation_error")


def test_weights_and_drop_rule_recompute(client, world, organiser, field):
    f = field(1, arrived=1)
    cid, entry = f.competition_id, f.entry(0)
    row = _put(client, organiser, cid, entry, theory=70, practical=_judges(60, 100, 80)).get_json()
    assert (row["practical"], row["final"]) == ("80.00", "76.00")  # mean of all three; 28 + 48
    client.patch(f"{BASE}/{cid}/scoring", json={"drop_extremes": True}, headers=organiser)
    row = client.get(f"{BASE}/{cid}/results", headers=organiser).get_json()["rows"][0]
    assert (row["practical"], row["final"]) == ("80.00", "76.00")  # 80 is also the middle score
    _put(client, organiser, cid, entry, practical=_judges(60, 100, 70))
    row = client.get(f"{BASE}/{cid}/results", headers=organiser).get_json()["rows"][0]
    assert (row["practical"], row["final"]) == ("70.00", "70.00")  # 28 + 42
    client.patch(f"{BASE}/{cid}/scoring", json={"drop_extremes": False}, headers=organiser)
    row = client.get(f"{BASE}/{cid}/results", headers=organiser).get_json()["rows"][0]
    assert (row["practical"], row["final"]) == ("76.67", "74.00")  # 230/3 = 76.666…; 28 + 46.002
