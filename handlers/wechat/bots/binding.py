"""绑定: link a follower to their member record (name + last digits, or a one-time code)."""

from __future__ import annotations

import re

from server.extensions import db
from server.models import Person
from server.services import people

from ..router import router

CODE_RE = re.compile(r"^(?:绑定|bd)\s*(\d{6})$", re.IGNORECASE)
LOCKED = "验证失败次数过多，为保护您的信息安全，请1小时后再试，或在“职工之家”小程序“我的”页面获取绑定码。"


def _bound_text(person: Person) -> str:
    org = person.org.name if person.org else "（未填写）"
    return f"您已绑定会员信息：{person.real_name}，所属工会：{org}。如需更改，请在“职工之家”小程序修改。"


@router.keyword("绑定", "绑定会员", "会员绑定", "bind")
def bind_start(ctx):
    person = ctx.person
    if person is not None and person.bound:
        return _bound_text(person)
    if people.binding_locked(ctx.openid):
        return LOCKED
    ctx.ask("bind_name")
    return (
        "请回复您的真实姓名（如：张三）。\n"
        "也可在“职工之家”小程序“我的”页面获取6位绑定码，直接回复“绑定 绑定码”。\n回复“取消”可退出。"
    )


@router.keyword(r"^(?:绑定|bd)\s*\d{6}$", match="regex", priority=50)
def bind_with_code(ctx):
    if people.binding_locked(ctx.openid):
        return LOCKED
    code = CODE_RE.match(ctx.content.strip()).group(1)
    person_id = people.redeem_binding_code(code)
    member = db.get(Person, person_id) if person_id else None
    if member is None:
        people.record_binding_failure(ctx.openid)
        return f"绑定码无效或已过期，请在小程序中重新获取。（还可尝试{people.tries_left(ctx.openid)}次）"
    return _finish(ctx, member)


@router.conversation("bind_name")
def bind_name(ctx, state):
    name = ctx.content.strip()
    if not (1 < len(name) <= 20) or any(ch.isdigit() for ch in name):
        ctx.ask("bind_name")
        return "姓名格式不正确，请回复您的真实姓名（如：张三），或回复“取消”。"
    ctx.ask("bind_digits", {"name": name})
    return "请回复您登记的手机号后4位或身份证号后4位。"


@router.conversation("bind_digits")
def bind_digits(ctx, state):
    if people.binding_locked(ctx.openid):
        ctx.end_conversation()
        return LOCKED
    digits = ctx.content.strip().upper()
    member = people.find_member(state.get("name", ""), digits) if re.fullmatch(r"[0-9X]{4,6}", digits) else None
    if member is None:
        failures = people.record_binding_failure(ctx.openid)
        if failures >= people.BIND_MAX_FAILURES:
            ctx.end_conversation()
            return LOCKED
        ctx.ask("bind_digits", state)
        return f"未找到匹配的会员信息，请核对后重新回复手机号或身份证号后4位（还可尝试{people.tries_left(ctx.openid)}次），或回复“取消”。"
    return _finish(ctx, member)


def _finish(ctx, member: Person) -> str:
    ctx.end_conversation()
    try:
        member = people.bind_follower(ctx.openid, member)
    except ValueError:
        return "该会员信息已绑定其他微信号。如有疑问，请联系所在企业工会或拨打服务热线。"
    ctx.forget_person()
    return "绑定成功！" + _bound_text(member) + "\n现在可以回复“申请进度”“报名”查询您的办理情况。"
