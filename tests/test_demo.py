"""Demo data: a believable city of unions, created once and only once."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime, timezone

import pytest
from flask import current_app
from sqlalchemy import func, select

from server.demo import (
    CITY_NAME,
    DEMO_ADMIN_PASSWORD,
    DEMO_ADMIN_USERNAME,
    credit_code,
    demo_counts,
    demo_mp_openid,
    seed_demo,
    uscc_check_char,
)
from server.models import (
    Competition,
    Education,
    Organisation,
    Person,
    SkillLevel,
    Staff,
    StaffRole,
    SubsidyProgram,
    WorkerCategory,
)
from server.security import birth_date_from_id, gender_from_id, validate_id_number, validate_phone
from server.services.staff import create_staff, verify_password
from server.wechat.simulator.identity import identities, mp_openid_for


@pytest.fixture
def seeded(db_session):
    result = seed_demo()
    db_session.commit()
    return result


def test_seed_reports_what_it_created(seeded):
    assert seeded["created"] is True
    assert seeded["people"] == 300
    assert seeded["programs"] == 1
    assert seeded["competitions"] >= 4
    assert seeded == {**demo_counts(), "created": True}


def test_org_tree_is_city_over_districts_over_enterprises(seeded, db_session):
    orgs = list(db_session.scalars(select(Organisation)))
    by_id = {o.id: o for o in orgs}
    city = [o for o in orgs if o.kind == "city"]
    districts = [o for o in orgs if o.kind == "district"]
    enterprises = [o for o in orgs if o.kind == "enterprise"]
    assert len(city) == 1 and city[0].name == CITY_NAME and city[0].parent_id is None
    assert city[0].path == f"/{city[0].id}/"
    assert 3 <= len(districts) <= 4 and all(d.parent_id == city[0].id for d in districts)
    assert 6 <= len(enterprises) <= 10
    assert all(by_id[e.parent_id].kind == "district" for e in enterprises)
    for org in orgs:
        expected = (by_id[org.parent_id].path if org.parent_id else "/") + f"{org.id}/"
        assert org.path == expected
    assert all(d.name.startswith("江城市") and d.name.endswith("总工会") for d in districts)
    assert {d.id for d in districts} == {e.parent_id for e in enterprises}  # no district without members


def test_enterprises_have_employers_with_valid_credit_codes(seeded, db_session):
    enterprises = list(db_session.scalars(select(Organisation).where(Organisation.kind == "enterprise")))
    codes = [e.employer_credit_code for e in enterprises]
    assert len(set(codes)) == len(codes)
    for e in enterprises:
        assert e.name == e.employer_name + "工会"
        assert e.industry and e.address and e.contact_name and e.contact_phone
        code = e.employer_credit_code
        assert len(code) == 18 and code.startswith("91")
        assert uscc_check_char(code[:17]) == code[17]
    industries = " ".join(e.industry for e in enterprises)
    for word in ("汽车", "设备", "碳纤维", "配送"):
        assert word in industries


@pytest.mark.parametrize("published", ["91440300708461136T", "914403001922038216", "91330100716105852F"])
def test_credit_code_check_characters_match_published_codes(published):
    """Check characters of real, published company codes (GB 32100 and GB 11714)."""
    from server.demo import _org_code_check

    assert uscc_check_char(published[:17]) == published[17]
    assert _org_code_check(published[8:16]) == published[16]


def test_credit_codes_are_well_formed():
    code = credit_code(random.Random(1), "420600", "MA4")
    assert len(code) == 18 and code[:2] == "91" and code[2:8] == "420600" and code[8:11] == "MA4"
    assert uscc_check_char(code[:17]) == code[17]


def test_people_have_valid_encrypted_ids_and_unique_phones(seeded, db_session):
    cipher = current_app.extensions["unionhub"]["id_cipher"]
    people = list(db_session.scalars(select(Person)))
    assert len(people) == 300
    ids = []
    today = date.today()
    for p in people:
        id_number = cipher.decrypt(p.id_number_enc)
        assert validate_id_number(id_number) is None, id_number
        assert cipher.index(id_number) == p.id_number_hash
        assert p.birth_date == birth_date_from_id(id_number)
        assert p.gender == gender_from_id(id_number)
        age = today.year - p.birth_date.year - ((today.month, today.day) < (p.birth_date.month, p.birth_date.day))
        assert 19 <= age <= 58
        assert validate_phone(p.phone) is None
        assert 2 <= len(p.real_name) <= 3
        assert p.bound
        ids.append(id_number)
    assert len(set(ids)) == 300
    assert len({p.phone for p in people}) == 300


def test_people_work_for_enterprise_unions_in_realistic_trades(seeded, db_session):
    people = list(db_session.scalars(select(Person)))
    orgs = {o.id: o for o in db_session.scalars(select(Organisation))}
    for p in people:
        assert orgs[p.org_id].kind == "enterprise"
        assert p.employer == orgs[p.org_id].employer_name
        SkillLevel(p.skill_level), Education(p.education), WorkerCategory(p.worker_category)
    trades = Counter(p.trade for p in people)
    for trade in ("焊工", "数控车工", "汽车装调工", "网约配送员", "化工总控工"):
        assert trades[trade] > 0, trade
    delivery = [p for p in people if "配送" in orgs[p.org_id].employer_name]
    assert delivery and all(p.worker_category == "new_form" for p in delivery)
    categories = Counter(p.worker_category for p in people)
    assert categories["frontline"] == max(categories.values())
    assert 0.15 < categories["migrant"] / len(people) < 0.4


def test_skill_levels_form_a_pyramid(seeded, db_session):
    levels = Counter(db_session.scalars(select(Person.skill_level)))
    rank = {level.value: level.rank for level in SkillLevel}
    lower = levels["junior"] + levels["intermediate"]
    upper = sum(n for level, n in levels.items() if rank[level] >= SkillLevel.TECHNICIAN.rank)
    assert lower > 3 * upper > 0
    assert levels["chief_technician"] <= 5


def test_membership_and_wechat_identities(seeded, db_session):
    people = list(db_session.scalars(select(Person)))
    members = [p for p in people if p.is_member]
    assert 0.8 < len(members) / len(people) < 1
    assert all(p.member_since and p.member_since <= date.today() for p in members)
    assert all(p.member_since is None for p in people if not p.is_member)

    wechat = [p for p in people if p.mp_openid]
    assert 0.6 < len(wechat) / len(people) < 0.8
    for p in wechat:
        assert len(p.mp_openid) == 28 and p.mp_openid.startswith("o")
        assert identities(p.mp_openid) == {"mp_openid": p.mp_openid, "oa_openid": p.oa_openid, "unionid": p.unionid}
        assert mp_openid_for(p.oa_openid) == p.mp_openid
        assert p.oa_subscribed_at is not None and p.oa_subscribed_at.tzinfo is not None
        if not p.oa_subscribed:
            assert p.oa_unsubscribed_at >= p.oa_subscribed_at
    subscribed = [p for p in wechat if p.oa_subscribed]
    assert len(subscribed) > 0.75 * len(wechat)
    assert all(p.oa_openid is None and p.unionid is None and not p.oa_subscribed for p in people if not p.mp_openid)
    assert demo_mp_openid(1) == demo_mp_openid(1) != demo_mp_openid(2)


def test_subsidy_programme_is_the_five_year_action(seeded, db_session):
    program = db_session.scalars(select(SubsidyProgram)).one()
    city = db_session.scalars(select(Organisation).where(Organisation.kind == "city")).one()
    assert program.org_id == city.id
    assert "2026—2030" in program.name and program.description
    assert program.kinds == ["degree", "skill"]
    assert program.per_person_cap_fen == 250_000
    assert program.max_people == 2000
    assert program.budget_fen == 2000 * 250_000
    assert program.review_levels == 2 and program.status == "open"
    assert program.window_start == datetime(2025, 12, 31, 16, 0, tzinfo=timezone.utc)  # 2026-01-01 00:00 in Shanghai
    assert program.window_end.year == 2030 and program.window_end > program.window_start
    assert program.eligibility["member_required"] is True
    assert set(program.required_documents) == {"degree", "skill"}


def test_competitions_are_open_upcoming_and_closed(seeded, db_session):
    now = datetime.now(timezone.utc)
    competitions = list(db_session.scalars(select(Competition)))
    assert len(competitions) >= 4
    open_now = [c for c in competitions if c.signup_start <= now < c.signup_end]
    upcoming = [c for c in competitions if now < c.signup_start]
    closed = [c for c in competitions if c.signup_end <= now]
    assert len(open_now) >= 2 and upcoming and closed
    for c in competitions:
        assert c.status == "published"
        assert c.theory_at > c.signup_end and c.practical_at >= c.theory_at
        assert 30 <= c.capacity <= 120
        assert c.theory_weight + c.practical_weight == 100
        assert c.trade in c.eligibility["trades"]
        SkillLevel(c.eligibility["min_skill_level"])
    assert {"焊工", "工业机器人系统操作员", "新能源汽车维修工"} <= {c.trade for c in competitions}
    assert {"数控车工", "数控铣工"} <= {t for c in competitions for t in c.eligibility["trades"]}
    teams = [c for c in competitions if c.entry_mode == "team"]
    assert teams and all(c.team_min == 2 and c.team_max == 3 for c in teams)
    assert any(c.org_quota for c in competitions) and any(c.needs_approval for c in competitions)


def test_demo_staff_can_log_in(seeded, db_session):
    admin = db_session.scalars(select(Staff).where(Staff.username == DEMO_ADMIN_USERNAME)).one()
    assert admin.role == "admin" and admin.org.kind == "city" and admin.display_name
    assert verify_password(admin, DEMO_ADMIN_PASSWORD)
    assert not verify_password(admin, "wrong-password")
    roles = {s.role for s in db_session.scalars(select(Staff))}
    assert {"admin", "officer", "reviewer", "finance"} <= roles
    for staff in db_session.scalars(select(Staff)):
        assert staff.password_hash != DEMO_ADMIN_PASSWORD
        assert verify_password(staff, DEMO_ADMIN_PASSWORD)
    officer = db_session.scalars(select(Staff).where(Staff.role == "officer")).first()
    assert officer.org.kind == "enterprise"


def test_seeding_twice_creates_nothing(seeded, db_session):
    before = demo_counts()
    again = seed_demo()
    db_session.commit()
    assert again["created"] is False
    assert all(again[key] == 0 for key in before)
    assert demo_counts() == before


def test_seed_is_deterministic(db_session):
    seed_demo(workers=20)
    first = [(p.real_name, p.phone, p.trade, p.mp_openid) for p in db_session.scalars(select(Person).order_by(Person.id))]
    db_session.rollback()
    assert db_session.scalar(select(func.count()).select_from(Person)) == 0
    seed_demo(workers=20)
    second = [(p.real_name, p.phone, p.trade, p.mp_openid) for p in db_session.scalars(select(Person).order_by(Person.id))]
    assert first == second and len(first) == 20


def test_seed_skips_an_existing_admin_account(db_session):
    """`unionhub create-admin` may have run before the demo data was seeded."""
    from server.services.orgs import create_org

    other = create_org(name="其他市总工会", kind="city")
    create_staff(DEMO_ADMIN_USERNAME, "another-password", other, "admin")
    result = seed_demo(workers=5)
    assert result["created"] is True and result["staff"] == 5
    assert db_session.scalar(select(func.count()).select_from(Staff).where(Staff.username == DEMO_ADMIN_USERNAME)) == 1


def test_create_staff_rejects_a_taken_username_and_bad_input(db_session):
    from server.services.orgs import create_org

    city = create_org(name="测试市总工会", kind="city")
    staff = create_staff("zhang", "s3cret-pass", city, StaffRole.REVIEWER, display_name="张三")
    assert staff.id and staff.org_id == city.id and staff.role == "reviewer"
    assert verify_password(staff, "s3cret-pass") and not verify_password(None, "s3cret-pass")
    with pytest.raises(ValueError, match="already taken"):
        create_staff("zhang", "other-pass", city.id, "admin")
    with pytest.raises(ValueError, match="unknown role"):
        create_staff("li", "pass-word", city, "superuser")
    with pytest.raises(ValueError, match="does not exist"):
        create_staff("li", "pass-word", 987654, "admin")
    with pytest.raises(ValueError, match="empty"):
        create_staff("  ", "pass-word", city, "admin")
