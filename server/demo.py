"""Demo data: a fictional mid-size industrial city, 江城市, and its unions.

:func:`seed_demo` fills an empty database with an organisation tree (the
city federation, its district/county unions and enterprise unions with
their employers), staff accounts, a few hundred workers, the five-year study
and skill subsidy programme and a handful of skill competitions.  It is
deterministic (one ``random.Random(rng_seed)``), needs no network, only
flushes (the caller commits) and is idempotent: once the city federation
exists it creates nothing.

Everything is fictional: the city, the companies, the people.  ID numbers
have valid check digits and credit codes valid GB 32100 check characters,
so the validators accept them, but none belongs to anybody.

Workers who have WeChat identities get a mini-program openid from
:func:`demo_mp_openid` and their Official Account openid and unionid from
the simulator's :func:`~server.wechat.simulator.identity.identities`, so the
simulator recognises them in both apps.
"""

from __future__ import annotations

import base64
import hashlib
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from flask import current_app
from sqlalchemy import func, select

from server.extensions import db
from server.models import (
    AuditEntry,
    Competition,
    KeywordReply,
    Organisation,
    OrgKind,
    Person,
    SkillLevel,
    Staff,
    SubsidyProgram,
)
from server.security import birth_date_from_id, gender_from_id, id_check_char
from server.services.orgs import create_org
from server.services.staff import create_staff
from server.wechat.simulator.identity import identities

DEMO_ADMIN_USERNAME = "admin"
DEMO_ADMIN_PASSWORD = "unionhub-demo"
#: Every demo staff account uses the same password.
DEMO_STAFF_PASSWORD = DEMO_ADMIN_PASSWORD

#: Asia/Shanghai (no daylight saving since 1991), without needing tzdata.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

CITY_NAME = "江城市总工会"  # also the marker that the demo data exists

# --------------------------------------------------------------------------
# Organisations
# --------------------------------------------------------------------------

#: The city federation.
CITY = {
    "name": CITY_NAME,
    "short_name": "市总工会",
    "region": "420600",
    "address": "江城市江汉区解放路188号（江城市工人文化宫）",
    "contact_name": "周建华",
}

#: District/county unions: key, name, short name, region code, address, contact.
DISTRICTS = [
    ("jingkai", "江城市经开区总工会", "经开区总工会", "420671", "江城市经开区创业大道8号", "李慧敏"),
    ("gaoxin", "江城市高新区总工会", "高新区总工会", "420672", "江城市高新区光谷二路66号", "孙志刚"),
    ("donghu", "江城市东湖区总工会", "东湖区总工会", "420602", "江城市东湖区东湖路29号", "何丽萍"),
    ("linjiang", "江城市临江县总工会", "临江县总工会", "420624", "江城市临江县城关镇人民路15号", "汪德胜"),
]


@dataclass(frozen=True)
class Profile:
    """How an industry's workforce looks: trades, skill levels, schooling, sex ratio."""

    trades: dict[str, int]
    levels: dict[str, int]
    education: dict[str, int]
    male_share: float
    new_form: bool = False


_FACTORY_LEVELS = {
    "apprentice": 5, "junior": 30, "intermediate": 33, "senior": 19, "technician": 8,
    "senior_technician": 3, "principal_technician": 1.2, "chief_technician": 0.8,
}
_PROCESS_LEVELS = {
    "apprentice": 4, "junior": 26, "intermediate": 35, "senior": 21, "technician": 9,
    "senior_technician": 3.5, "principal_technician": 1, "chief_technician": 0.5,
}
_FACTORY_EDUCATION = {"junior_high": 10, "senior_high": 14, "vocational": 36, "college": 28, "bachelor": 11, "postgraduate": 1}
_PROCESS_EDUCATION = {"junior_high": 6, "senior_high": 12, "vocational": 30, "college": 34, "bachelor": 16, "postgraduate": 2}

PROFILES = {
    "auto": Profile(
        trades={"汽车装调工": 30, "焊工": 14, "工业机器人系统操作员": 10, "涂装工": 8, "电工": 8,
                "机修钳工": 8, "数控车工": 5, "叉车司机": 7},
        levels=_FACTORY_LEVELS, education=_FACTORY_EDUCATION, male_share=0.82,
    ),
    "nev": Profile(
        trades={"汽车装调工": 24, "新能源汽车维修工": 16, "工业机器人系统操作员": 13, "焊工": 10, "电工": 12,
                "机修钳工": 7, "涂装工": 6, "叉车司机": 5},
        levels=_FACTORY_LEVELS, education=_PROCESS_EDUCATION, male_share=0.78,
    ),
    "cnc": Profile(
        trades={"数控车工": 26, "数控铣工": 20, "钳工": 12, "装配钳工": 10, "磨工": 7, "电工": 8,
                "焊工": 6, "机修钳工": 6, "工业机器人系统操作员": 5},
        levels=_FACTORY_LEVELS, education=_FACTORY_EDUCATION, male_share=0.85,
    ),
    "heavy": Profile(
        trades={"焊工": 28, "铆工": 9, "钳工": 10, "装配钳工": 10, "数控车工": 8, "数控铣工": 5, "电工": 8,
                "机修钳工": 6, "起重装卸机械操作工": 6, "叉车司机": 5},
        levels=_FACTORY_LEVELS, education=_FACTORY_EDUCATION, male_share=0.9,
    ),
    "materials": Profile(
        trades={"复合材料工": 24, "化工总控工": 20, "化纤纺丝工": 12, "化学检验员": 9, "电工": 8,
                "机修钳工": 8, "仪器仪表维修工": 6, "叉车司机": 5},
        levels=_PROCESS_LEVELS, education=_PROCESS_EDUCATION, male_share=0.68,
    ),
    "chemical": Profile(
        trades={"化工总控工": 36, "化学检验员": 11, "仪器仪表维修工": 10, "电工": 10, "机修钳工": 10,
                "焊工": 5, "叉车司机": 5},
        levels=_PROCESS_LEVELS, education=_PROCESS_EDUCATION, male_share=0.75,
    ),
    "delivery": Profile(
        trades={"网约配送员": 62, "快递员": 30, "快件处理员": 8},
        levels={"apprentice": 10, "junior": 52, "intermediate": 28, "senior": 8, "technician": 2},
        education={"junior_high": 28, "senior_high": 34, "vocational": 22, "college": 13, "bachelor": 3},
        male_share=0.9, new_form=True,
    ),
}

#: Enterprise unions: key, district, employer, industry, profile, headcount weight,
#: address, contact, and the first characters of the organisation code (see credit_code).
ENTERPRISES = [
    ("jc_auto", "jingkai", "江城汽车制造有限公司", "汽车制造业（整车）", "auto", 22,
     "江城市经开区汽车城大道1号", "张海涛", "7"),
    ("jc_nev", "jingkai", "江城新能源汽车股份有限公司", "汽车制造业（新能源整车及动力电池）", "nev", 16,
     "江城市经开区新能源产业园科创路9号", "罗晓燕", "MA4"),
    ("jc_cnc", "gaoxin", "江城数控机床股份有限公司", "通用设备制造业（数控机床）", "cnc", 13,
     "江城市高新区精工路18号", "徐国庆", "6"),
    ("jc_materials", "gaoxin", "江城新材料科技有限公司", "化学纤维制造业（碳纤维及复合材料）", "materials", 11,
     "江城市高新区新材料产业园碳谷大道6号", "曾雅琴", "MA4"),
    ("jc_heavy", "donghu", "江城重型机械集团有限公司", "专用设备制造业（工程及起重机械）", "heavy", 18,
     "江城市东湖区重工路1号", "邓建军", "1"),
    ("jc_delivery", "donghu", "江城快送同城配送服务有限公司", "即时配送与快递服务（新就业形态）", "delivery", 12,
     "江城市东湖区新华路200号", "田宇", "MA4"),
    ("jc_chemical", "linjiang", "江城临江化工新材料有限公司", "化学原料和化学制品制造业", "chemical", 8,
     "江城市临江县化工园区滨江大道3号", "蒋文斌", "5"),
    ("jc_castings", "linjiang", "江城临江精密铸锻有限公司", "金属制品业（汽车零部件铸锻件）", "heavy", 6,
     "江城市临江县工业园长兴路12号", "彭立新", "MA4"),
]

#: Staff accounts: username, display name, organisation key, role.
STAFF = [
    (DEMO_ADMIN_USERNAME, "周建华", "city", "admin"),
    ("reviewer", "陈静", "city", "reviewer"),
    ("finance", "刘芳", "city", "finance"),
    ("organiser", "赵磊", "city", "organiser"),
    ("jingkai_admin", "李慧敏", "jingkai", "admin"),
    ("jc_auto_officer", "张海涛", "jc_auto", "officer"),
]

# --------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴"
)
GIVEN_MALE = "伟强磊军洋勇杰涛明超斌鹏辉华建国平刚峰波宇浩亮俊飞龙海东文志永成林鑫凯晨阳帅松健兵锋德胜立新"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞燕玲婷雪慧颖琳倩洁丹萍红梅兰月佳欣怡晶璐莉秀英桂琴蓉"
GIVEN_ANY = "晓子思嘉雨春秋文一小金玉家天"

#: Birthplace region codes (居民身份证号前6位): the city's own districts and counties …
LOCAL_REGIONS = ("420602", "420606", "420607", "420624", "420625", "420682", "420683", "420684")
#: … and the rural counties most migrant workers come from.
MIGRANT_REGIONS = (
    "411302", "411381", "411323", "411528", "412726", "421381", "421302", "421222", "422822", "430621",
    "430921", "341221", "341226", "360722", "500229", "510722", "511621", "513030", "522121",
)
PHONE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "166", "173", "175", "176", "177", "178", "180", "181", "182", "183", "185",
    "186", "187", "188", "189", "191", "193", "195", "198", "199",
)
WECHAT_SHARE = 0.7
OA_SUBSCRIBED_SHARE = 0.88

# --------------------------------------------------------------------------
# Subsidy programme and competitions
# --------------------------------------------------------------------------

PROGRAM = {
    "name": "江城市职工学历与技能提升补助（2026—2030年）",
    "description": (
        "为深入实施职工素质提升工程，江城市总工会在2026—2030年开展职工学历与技能提升行动，"
        "五年内计划资助2000名职工。\n"
        "一、学历提升：在职会员职工通过成人高考、自学考试、开放教育等途径参加大专、本科学历教育，"
        "凭录取通知书或毕业证书及学费发票申请补助。\n"
        "二、技能提升：在职会员职工新取得职业技能等级证书（初级工至高级技师）或职业资格证书，"
        "凭证书及培训、鉴定费用发票申请补助。\n"
        "每名职工在活动期内最高补助2500元，按实际缴费金额据实补助。"
        "申请须为加入工会满6个月的一线职工、农民工或新就业形态劳动者，"
        "经所在企业工会初审、市总工会复审后发放。"
    ),
    "kinds": ["degree", "skill"],
    "window": (date(2026, 1, 1), date(2030, 12, 31)),
    "per_person_cap_fen": 250_000,
    "max_people": 2000,
    "review_levels": 2,
    "eligibility": {
        "member_required": True,
        "worker_categories": ["frontline", "migrant", "new_form"],
        "min_membership_months": 6,
        "org_ids": None,
    },
    "required_documents": {
        "degree": ["admission_notice_or_diploma", "tuition_invoice"],
        "skill": ["certificate", "fee_invoice"],
    },
}

#: Competitions.  ``days`` are offsets from today (Asia/Shanghai): sign-up
#: start, sign-up end, theory exam, practical exam; ``{year}`` in the name is
#: the year sign-up starts.
COMPETITIONS = [
    {
        "name": "{year}年江城市“技能江城”焊工职业技能竞赛",
        "trade": "焊工", "level": "city", "organiser": "city",
        "days": (-12, 18, 28, 29), "capacity": 120, "org_quota": 8,
        "venue": "江城市技师学院焊接实训中心（东湖区学府路66号）",
        "min_level": "intermediate", "weights": (30, 70),
        "description": "设焊条电弧焊、熔化极气体保护焊、钨极氩弧焊三个项目，理论考试占30%，实际操作占70%。"
                       "获得第一名且符合条件的选手，按规定推荐申报“江城市技术能手”。每个企业工会限报8人。",
    },
    {
        "name": "{year}年江城市高新区数控机床操作（数控车工、数控铣工）职业技能竞赛",
        "trade": "数控车工", "trades": ["数控车工", "数控铣工"], "level": "district", "organiser": "gaoxin",
        "days": (-6, 14, 24, 25), "capacity": 60,
        "venue": "江城数控机床股份有限公司培训中心（高新区精工路18号）",
        "min_level": "intermediate", "weights": (30, 70),
        "description": "分数控车工、数控铣工两个组别，实操采用五轴加工中心与数控车床，"
                       "按图纸完成零件编程与加工，成绩优异者推荐参加市级竞赛。",
    },
    {
        "name": "{year}年江城市“技能江城”工业机器人系统操作员职业技能竞赛",
        "trade": "工业机器人系统操作员", "level": "city", "organiser": "city",
        "days": (9, 39, 50, 51), "capacity": 30, "team": (2, 3), "needs_approval": True,
        "venue": "江城职业技术学院智能制造实训基地（经开区职教路1号）",
        "min_level": "junior", "weights": (40, 60),
        "description": "以团队形式参赛，每队2至3名选手，完成工业机器人系统的安装、编程调试与故障排除。"
                       "报名须经所在企业工会审核推荐。",
    },
    {
        "name": "{year}年江城市新能源汽车维修工职业技能竞赛",
        "trade": "新能源汽车维修工", "level": "city", "organiser": "city",
        "days": (-45, -8, 6, 7), "capacity": 80,
        "venue": "江城新能源汽车股份有限公司技能实训中心（经开区科创路9号）",
        "min_level": "junior", "weights": (40, 60),
        "description": "围绕动力电池及管理系统、驱动电机及控制系统、整车高压安全防护等内容进行理论考试和实际操作。",
    },
    {
        "name": "江城重型机械集团{year}年维修电工技能比武",
        "trade": "电工", "level": "enterprise", "organiser": "jc_heavy", "own_org_only": True,
        "days": (-3, 25, 33, 33), "capacity": 40,
        "venue": "江城重型机械集团职工培训学校（东湖区重工路1号）",
        "min_level": "junior", "weights": (30, 70),
        "description": "集团内部技能比武，比赛内容为低压电气控制线路安装调试与PLC编程，前三名优先推荐参加市级竞赛。",
    },
]

_OPENID_SALT = b"unionhub-demo-worker:"

# --------------------------------------------------------------------------
# Small generators
# --------------------------------------------------------------------------


def demo_mp_openid(index: int) -> str:
    """The mini-program openid of demo worker ``index``: 28 characters starting with "o"."""
    digest = hashlib.sha256(_OPENID_SALT + str(index).encode()).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode()[:27]


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _org_code_check(body: str) -> str:
    """Check character of an 8-character organisation code (GB 11714)."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(c, 36) * w for c, w in zip(body, weights))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_char(first17: str) -> str:
    """Check character of a unified social credit code (统一社会信用代码, GB 32100)."""
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS))
    return _USCC_CHARS[(31 - total % 31) % 31]


def credit_code(rng: random.Random, region: str, org_code_prefix: str) -> str:
    """A well-formed 18-character credit code of a company registered in ``region``."""
    alphabet = "0123456789" if org_code_prefix.isdigit() else _USCC_CHARS
    body = org_code_prefix + "".join(rng.choice(alphabet) for _ in range(8 - len(org_code_prefix)))
    first17 = "91" + region + body + _org_code_check(body)
    return first17 + uscc_check_char(first17)


def _name(rng: random.Random, male: bool) -> str:
    """Surname plus one or two given-name characters (most people have two)."""
    own = GIVEN_MALE if male else GIVEN_FEMALE
    surname = rng.choices(SURNAMES, weights=range(len(SURNAMES), 0, -1))[0]
    if rng.random() < 0.75:
        return surname + rng.choice(own + GIVEN_ANY) + rng.choice(own)
    return surname + rng.choice(own)


def _id_number(rng: random.Random, region: str, born: date, male: bool) -> str:
    sequence = f"{rng.randrange(100):02d}{rng.choice('13579' if male else '02468')}"
    first17 = region + born.strftime("%Y%m%d") + sequence
    return first17 + id_check_char(first17)


def _birth_date(rng: random.Random, today: date) -> date:
    """A birth date giving an age between 19 and 58, most workers in their late twenties to forties."""
    years = rng.triangular(19.01, 58.95, 33)
    return today - timedelta(days=int(years * 365.2425))


def _phone(rng: random.Random, taken: set[str]) -> str:
    while True:
        phone = rng.choice(PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if phone not in taken:
            taken.add(phone)
            return phone


def _random_moment(rng: random.Random, start: date, end: date) -> datetime:
    """A random daytime moment (Asia/Shanghai) between two dates, as UTC."""
    day = start + timedelta(days=rng.randrange(max((end - start).days, 1)))
    local = datetime.combine(day, time(rng.randrange(7, 23), rng.randrange(60)), SHANGHAI)
    return local.astimezone(timezone.utc)


def _shanghai(day: date, at: time = time(0, 0)) -> datetime:
    return datetime.combine(day, at, SHANGHAI).astimezone(timezone.utc)


# --------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------


def _seed_orgs(rng: random.Random, phones: set[str]) -> tuple[dict[str, Organisation], int]:
    """The org tree keyed by "city" and the district and enterprise keys, and how many were created."""
    orgs: dict[str, Organisation] = {}
    existing = {o.name: o for o in db.scalars(select(Organisation))}
    codes_taken = set(db.scalars(select(Organisation.employer_credit_code).where(Organisation.employer_credit_code.is_not(None))))
    created = 0

    def get_or_create(key: str, name: str, kind: OrgKind, parent: Organisation | None, **fields) -> None:
        nonlocal created
        org = existing.get(name)
        if org is None:
            org = create_org(name=name, kind=kind, parent=parent, contact_phone=_phone(rng, phones), **fields)
            created += 1
        orgs[key] = org

    get_or_create("city", CITY["name"], OrgKind.CITY, None, short_name=CITY["short_name"],
                  address=CITY["address"], contact_name=CITY["contact_name"])
    regions = {"city": CITY["region"]}
    for key, name, short, region, address, contact in DISTRICTS:
        get_or_create(key, name, OrgKind.DISTRICT, orgs["city"], short_name=short, address=address, contact_name=contact)
        regions[key] = region
    for key, district, employer, industry, _profile, _weight, address, contact, code_prefix in ENTERPRISES:
        code = credit_code(rng, regions[district], code_prefix)
        while code in codes_taken:
            code = credit_code(rng, regions[district], code_prefix)
        codes_taken.add(code)
        short = employer.replace("股份有限公司", "").replace("有限公司", "") + "工会"
        get_or_create(key, employer + "工会", OrgKind.ENTERPRISE, orgs[district], short_name=short, employer_name=employer,
                      employer_credit_code=code, industry=industry, address=address, contact_name=contact)
    return orgs, created


def _seed_staff(orgs: dict[str, Organisation]) -> int:
    taken = set(db.scalars(select(Staff.username)))
    created = 0
    for username, display_name, org_key, role in STAFF:
        if username in taken:
            continue
        create_staff(username, DEMO_STAFF_PASSWORD, orgs[org_key], role, display_name=display_name)
        created += 1
    return created


def _person(rng: random.Random, index: int, org: Organisation, profile: Profile, today: date, taken: dict[str, set]) -> Person:
    """Worker number ``index``, employed by ``org``; ``taken`` holds identifiers already in use."""
    cipher = current_app.extensions["unionhub"]["id_cipher"]
    male = rng.random() < profile.male_share
    if profile.new_form:
        category = "new_form"
    else:
        category = _pick(rng, {"frontline": 60, "migrant": 30, "technical": 7, "other": 3})
    local = category not in ("migrant", "new_form") or rng.random() < 0.35
    region = rng.choice(LOCAL_REGIONS if local else MIGRANT_REGIONS)
    id_number = _id_number(rng, region, _birth_date(rng, today), male)
    while cipher.index(id_number) in taken["id_hash"]:
        id_number = _id_number(rng, region, _birth_date(rng, today), male)
    id_hash = cipher.index(id_number)
    taken["id_hash"].add(id_hash)
    born = birth_date_from_id(id_number)
    age = (today - born).days // 365

    level = _pick(rng, profile.levels)
    if age < 25 and SkillLevel(level).rank > SkillLevel.SENIOR.rank:
        level = SkillLevel.INTERMEDIATE.value  # technicians are rarely this young
    education = _pick(rng, profile.education)
    if category == "technical" and education in ("junior_high", "senior_high", "vocational"):
        education = "college"

    person = Person(
        real_name=_name(rng, male),
        phone=_phone(rng, taken["phone"]),
        id_number_enc=cipher.encrypt(id_number),
        id_number_hash=id_hash,
        birth_date=born,
        gender=gender_from_id(id_number),
        org_id=org.id,
        employer=org.employer_name,
        trade=_pick(rng, profile.trades),
        skill_level=level,
        education=education,
        worker_category=category,
        is_member=rng.random() < (0.8 if profile.new_form else 0.93),
    )
    if person.is_member:
        earliest = max(date(2008, 1, 1), born + timedelta(days=18 * 366))  # joined as an adult
        person.member_since = earliest + timedelta(days=rng.randrange(max((today - earliest).days - 20, 1)))
    mp_openid = demo_mp_openid(index)
    if rng.random() < WECHAT_SHARE and mp_openid not in taken["mp_openid"]:
        ids = identities(mp_openid)
        person.mp_openid, person.oa_openid, person.unionid = ids["mp_openid"], ids["oa_openid"], ids["unionid"]
        person.oa_subscribed_at = _random_moment(rng, today - timedelta(days=900), today - timedelta(days=2))
        person.oa_subscribed = rng.random() < OA_SUBSCRIBED_SHARE
        if not person.oa_subscribed:  # followed once, then unfollowed
            person.oa_unsubscribed_at = person.oa_subscribed_at + timedelta(days=rng.randrange(5, 300))
            person.oa_unsubscribed_at = min(person.oa_unsubscribed_at, _shanghai(today))
    return person


def _seed_people(rng: random.Random, orgs: dict[str, Organisation], workers: int, today: date, phones: set[str]) -> int:
    taken = {
        "phone": phones | set(db.scalars(select(Person.phone).where(Person.phone.is_not(None)))),
        "id_hash": set(db.scalars(select(Person.id_number_hash).where(Person.id_number_hash.is_not(None)))),
        "mp_openid": set(db.scalars(select(Person.mp_openid).where(Person.mp_openid.is_not(None)))),
    }
    companies = [(orgs[row[0]], PROFILES[row[4]]) for row in ENTERPRISES]
    weights = [row[5] for row in ENTERPRISES]
    people = []
    for index in range(1, workers + 1):
        org, profile = rng.choices(companies, weights=weights)[0]
        people.append(_person(rng, index, org, profile, today, taken))
    db.add_all(people)
    db.flush()
    return len(people)


def _seed_program(orgs: dict[str, Organisation]) -> int:
    if db.scalar(select(SubsidyProgram.id).where(SubsidyProgram.name == PROGRAM["name"])) is not None:
        return 0
    start, end = PROGRAM["window"]
    db.add(
        SubsidyProgram(
            org_id=orgs["city"].id,
            name=PROGRAM["name"],
            description=PROGRAM["description"],
            kinds=list(PROGRAM["kinds"]),
            eligibility=dict(PROGRAM["eligibility"]),
            required_documents={k: list(v) for k, v in PROGRAM["required_documents"].items()},
            window_start=_shanghai(start),
            window_end=_shanghai(end, time(23, 59, 59)),
            per_person_cap_fen=PROGRAM["per_person_cap_fen"],
            max_people=PROGRAM["max_people"],
            budget_fen=PROGRAM["max_people"] * PROGRAM["per_person_cap_fen"],
            review_levels=PROGRAM["review_levels"],
            status="open",
        )
    )
    db.flush()
    return 1


def _seed_competitions(orgs: dict[str, Organisation], today: date) -> int:
    existing = set(db.scalars(select(Competition.name)))
    created = 0
    for spec in COMPETITIONS:
        signup_start, signup_end, theory, practical = (today + timedelta(days=d) for d in spec["days"])
        name = spec["name"].format(year=signup_start.year)
        if name in existing:
            continue
        team = spec.get("team")
        organiser = orgs[spec["organiser"]]
        eligibility = {
            "member_required": True,
            "trades": spec.get("trades", [spec["trade"]]),
            "min_skill_level": spec["min_level"],
            "min_age": 18,
            "max_age": 55,
        }
        if spec.get("own_org_only"):
            eligibility["org_ids"] = [organiser.id]
        db.add(
            Competition(
                name=name,
                trade=spec["trade"],
                level=spec["level"],
                organiser_org_id=organiser.id,
                description=spec["description"],
                venue=spec["venue"],
                signup_start=_shanghai(signup_start),
                signup_end=_shanghai(signup_end, time(17, 30)),
                theory_at=_shanghai(theory, time(9, 0)),
                practical_at=_shanghai(practical, time(13, 30) if practical == theory else time(8, 30)),
                capacity=spec["capacity"],
                org_quota=spec.get("org_quota"),
                eligibility=eligibility,
                entry_mode="team" if team else "individual",
                team_min=team[0] if team else None,
                team_max=team[1] if team else None,
                needs_approval=spec.get("needs_approval", False),
                theory_weight=spec["weights"][0],
                practical_weight=spec["weights"][1],
                status="published",
            )
        )
        created += 1
    db.flush()
    return created


KEYWORD_REPLIES = [
    ("热线", "exact", "江城市总工会职工服务热线：12351（工作日 8:30—17:30）。\n法律援助、困难帮扶、技能补助咨询均可拨打。"),
    ("政策", "exact", "学历与技能提升补助：工会会员、一线职工（含农民工、新就业形态劳动者）取得学历或职业技能等级证书后可申请，"
                      "每人最高2500元，五年内累计不超过上限。详情请回复“补贴”，或在“职工之家”小程序查看。"),
    ("法律援助", "prefix", "职工法律援助请拨打12351转2，或到所在区总工会职工服务中心现场咨询。"),
    ("入会", "prefix", "加入工会：请联系所在单位工会，或在“职工之家”小程序“我要入会”在线申请。新就业形态劳动者可就近加入区域性、行业性工会。"),
]


def _seed_keyword_replies() -> int:
    for keyword, match, reply in KEYWORD_REPLIES:
        db.add(KeywordReply(keyword=keyword, match=match, reply=reply, priority=100))
    return len(KEYWORD_REPLIES)


def seed_demo(*, workers: int = 300, rng_seed: int = 20261121) -> dict:
    """Create the demo data once; return counts of what was created.

    Runs inside an app context and only flushes: the caller commits.  When
    the city federation already exists nothing is created and ``created``
    is False.
    """
    if db.scalar(select(Organisation.id).where(Organisation.name == CITY_NAME)) is not None:
        return {"organisations": 0, "people": 0, "staff": 0, "programs": 0, "competitions": 0, "keyword_replies": 0, "created": False}
    rng = random.Random(rng_seed)
    today = datetime.now(SHANGHAI).date()
    phones: set[str] = set()
    orgs, orgs_created = _seed_orgs(rng, phones)
    counts = {
        "organisations": orgs_created,
        "staff": _seed_staff(orgs),
        "people": _seed_people(rng, orgs, workers, today, phones),
        "programs": _seed_program(orgs),
        "competitions": _seed_competitions(orgs, today),
        "keyword_replies": _seed_keyword_replies(),
    }
    db.add(
        AuditEntry(actor_type="system", org_id=orgs["city"].id, action="demo.seeded", entity_type="organisation",
                   entity_id=orgs["city"].id, details=dict(counts))
    )
    db.flush()
    return {**counts, "created": True}


def demo_counts() -> dict[str, int]:
    """How many rows of each seeded kind exist (for the CLI and tests)."""
    models = {"organisations": Organisation, "people": Person, "staff": Staff, "programs": SubsidyProgram,
              "competitions": Competition, "keyword_replies": KeywordReply}
    return {key: db.scalar(select(func.count()).select_from(model)) for key, model in models.items()}
