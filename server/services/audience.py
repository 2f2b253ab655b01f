"""Who an announcement reaches: the audience JSON turned into SQL on ``people``, resolved in pages.

An audience is a dict of filters, all of which must hold (AND); a list
filter matches any of its values (OR)::

    {"all": true}
    {"org_ids": [4, 9], "include_sub_orgs": true, "trades": ["焊工"], "skill_levels": ["senior"]}
    {"worker_categories": ["migrant"]}   {"competition_id": 3}   {"program_id": 1}
    {"not_read_announcement_id": 12}     # recipients of announcement 12 who have not opened it

Every audience is also limited to the author organisation's subtree
(``scope``); the city federation's scope (a root organisation) is everyone,
including followers not yet bound to a union.  Nothing here loads Person
objects: :func:`pages` yields plain rows, ``PAGE`` at a time, by keyset on
``people.id``.
"""

from __future__ import annotations

from sqlalchemy import exists, func, or_, select

from server.errors import NotFound, ServiceError
from server.extensions import db
from server.models import (
    Announcement,
    AnnouncementRead,
    Competition,
    CompetitionEntry,
    Delivery,
    Organisation,
    Person,
    Staff,
    SubsidyApplication,
    SubsidyProgram,
)
from server.models.competitions import ACTIVE_STATUSES

PAGE = 2000
LIST_FILTERS = ("org_ids", "trades", "skill_levels", "worker_categories")
ID_FILTERS = ("competition_id", "program_id", "not_read_announcement_id")
#: The columns a page carries: enough to choose a channel without loading a Person.
COLUMNS = (Person.id, Person.oa_openid, Person.oa_subscribed, Person.mp_openid, Person.oa_cs_until, Person.oa_cs_left)


def is_empty(audience: dict) -> bool:
    return not (audience.get("all") or any(audience.get(k) for k in LIST_FILTERS + ID_FILTERS))


def _invalid(field: str, message: str) -> ServiceError:
    return ServiceError("validation_error", "提交的信息有误，请检查后重试", 422, errors={"audience": {field: [message]}})


def validate(staff: Staff, audience: dict) -> dict:
    """Refuse an empty audience, unknown references and organisations outside the staff member's subtree."""
    if is_empty(audience):
        raise ServiceError("empty_audience", "请至少选择一个发送范围（全体、组织、工种、技能等级、职工类别、竞赛、补助项目或未读公告）", 422)
    org_ids = audience.get("org_ids") or []
    if org_ids:
        found = dict(db.execute(select(Organisation.id, Organisation.path).where(Organisation.id.in_(org_ids))).all())
        missing = [i for i in org_ids if i not in found]
        if missing:
            raise _invalid("org_ids", f"组织不存在：{', '.join(map(str, missing))}")
        outside = [i for i in org_ids if not found[i].startswith(staff.org.path)]
        if outside:
            raise ServiceError("org_out_of_scope", "只能向本组织及下级组织发送公告", 403, errors={"audience": {"org_ids": outside}})
    for field, model, label in (("competition_id", Competition, "竞赛"), ("program_id", SubsidyProgram, "补助项目"),
                                ("not_read_announcement_id", Announcement, "公告")):
        ref = audience.get(field)
        if ref is not None and db.get(model, ref) is None:
            raise _invalid(field, f"{label}不存在")
    previous = audience.get("not_read_announcement_id")
    if previous is not None:
        org = db.get(Organisation, db.get(Announcement, previous).org_id)
        if not org.path.startswith(staff.org.path):
            raise _invalid("not_read_announcement_id", "公告不存在")
    return audience


def conditions(audience: dict, scope: Organisation) -> list:
    """WHERE clauses on ``people`` for ``audience`` within ``scope``'s subtree."""
    where = []
    if scope.parent_id is not None:
        where.append(Person.org_id.in_(select(Organisation.id).where(Organisation.path.startswith(scope.path))))
    if org_ids := audience.get("org_ids"):
        if audience.get("include_sub_orgs"):
            where.append(Person.org_id.in_(_subtrees(org_ids)))
        else:
            where.append(Person.org_id.in_(org_ids))
    for field, column in (("trades", Person.trade), ("skill_levels", Person.skill_level),
                          ("worker_categories", Person.worker_category)):
        if values := audience.get(field):
            where.append(column.in_(values))
    if (competition_id := audience.get("competition_id")) is not None:
        where.append(Person.id.in_(select(CompetitionEntry.person_id).where(
            CompetitionEntry.competition_id == competition_id,
            CompetitionEntry.status.in_([s.value for s in ACTIVE_STATUSES]))))
    if (program_id := audience.get("program_id")) is not None:
        where.append(Person.id.in_(select(SubsidyApplication.person_id).where(
            SubsidyApplication.program_id == program_id, SubsidyApplication.status != "draft")))
    if (previous := audience.get("not_read_announcement_id")) is not None:
        where.append(exists().where(Delivery.announcement_id == previous, Delivery.person_id == Person.id))
        where.append(~exists().where(AnnouncementRead.announcement_id == previous,
                                     AnnouncementRead.person_id == Person.id))
    return where


def scope_of(announcement: Announcement) -> Organisation:
    org = db.get(Organisation, announcement.org_id)
    if org is None:
        raise NotFound("组织不存在")
    return org


def count(announcement: Announcement) -> int:
    where = conditions(announcement.audience, scope_of(announcement))
    return db.scalar(select(func.count()).select_from(Person).where(*where)) or 0


def page(announcement: Announcement, after: int, size: int = PAGE) -> list:
    """The next ``size`` recipients with ``people.id > after``, as rows of :data:`COLUMNS`."""
    where = conditions(announcement.audience, scope_of(announcement))
    stmt = select(*COLUMNS).where(Person.id > after, *where).order_by(Person.id).limit(size)
    return db.execute(stmt).all()


def pages(announcement: Announcement, after: int = 0, size: int = PAGE):
    """Every recipient after ``after``, one page (a list of rows) at a time."""
    while rows := page(announcement, after, size):
        yield rows
        after = rows[-1].id


def _subtrees(org_ids) -> "select":
    paths = db.scalars(select(Organisation.path).where(Organisation.id.in_(org_ids))).all()
    return select(Organisation.id).where(or_(*[Organisation.path.startswith(p) for p in paths]))


def target_orgs(announcement: Announcement) -> list[int]:
    """Organisations whose group bot gets the announcement, each once.

    Only a purely organisational audience posts to groups (a group is everyone in the union, so
    "welders of X" must not post to X's group): ``all`` -> every organisation in the scope,
    ``org_ids`` -> those (and their subtrees with ``include_sub_orgs``).
    """
    audience = announcement.audience
    if any(audience.get(k) not in (None, []) for k in ("trades", "skill_levels", "worker_categories") + ID_FILTERS):
        return []
    if org_ids := audience.get("org_ids"):
        stmt = _subtrees(org_ids) if audience.get("include_sub_orgs") else select(Organisation.id).where(
            Organisation.id.in_(org_ids))
    else:
        stmt = select(Organisation.id).where(Organisation.path.startswith(scope_of(announcement).path))
    return list(db.scalars(stmt.order_by(Organisation.id)))


def includes(announcement: Announcement, person_id: int) -> bool:
    """True when the person is (now) in the announcement's audience."""
    where = conditions(announcement.audience, scope_of(announcement))
    return db.scalar(select(Person.id).where(Person.id == person_id, *where)) is not None
