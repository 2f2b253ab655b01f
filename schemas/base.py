"""The project's base Schema: unknown fields refused, messages in Chinese."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

import marshmallow as ma
from marshmallow import fields

# Chinese default messages for every field type the API uses.  Set once, here,
# so that every schema built on ``Schema`` speaks to workers in their language.
_FIELD_MESSAGES = {
    fields.Field: {
        "required": "此项为必填项",
        "null": "此项不能为空",
        "validator_failed": "内容不符合要求",
    },
    fields.String: {"invalid": "应为文本", "invalid_utf8": "文本编码不正确"},
    fields.Integer: {"invalid": "应为整数", "too_large": "数值过大"},
    fields.Float: {"invalid": "应为数字", "special": "应为有效数字"},
    fields.Decimal: {"invalid": "应为数字", "special": "应为有效数字"},
    fields.Boolean: {"invalid": "应为是或否（true/false）"},
    fields.DateTime: {"invalid": "日期时间格式不正确，应如 2026-03-01T09:00:00+08:00", "invalid_awareness": "日期时间需带时区"},
    fields.Date: {"invalid": "日期格式不正确，应如 2026-03-01"},
    fields.List: {"invalid": "应为列表"},
    fields.Dict: {"invalid": "应为对象"},
    fields.Nested: {"type": "应为对象"},
    fields.Email: {"invalid": "邮箱地址不正确"},
    fields.URL: {"invalid": "网址不正确"},
}
for _cls, _messages in _FIELD_MESSAGES.items():
    _cls.default_error_messages = {**_cls.default_error_messages, **_messages}

# Validators used with Chinese messages.
Length = ma.validate.Length
Range = ma.validate.Range
OneOf = ma.validate.OneOf


def length(min: int | None = None, max: int | None = None) -> ma.validate.Length:
    if min is not None and max is not None:
        msg = f"长度应为{min}到{max}个字符"
    elif max is not None:
        msg = f"长度不能超过{max}个字符"
    else:
        msg = f"长度不能少于{min}个字符"
    return ma.validate.Length(min=min, max=max, error=msg)


def one_of(choices, labels=None) -> ma.validate.OneOf:
    return ma.validate.OneOf(choices, labels=labels, error="取值不在允许范围内：{choices}")


def value_range(min=None, max=None) -> ma.validate.Range:
    if min is not None and max is not None:
        msg = f"应在{min}到{max}之间"
    elif min is not None:
        msg = f"不能小于{min}"
    else:
        msg = f"不能大于{max}"
    return ma.validate.Range(min=min, max=max, error=msg)


CONTROL_TEXT = "不能包含控制字符"
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def no_control_chars(value) -> None:
    """Refuse NUL and other control characters in text (PostgreSQL cannot store NUL; nobody types the rest)."""
    if isinstance(value, str) and _CONTROL_CHARS.search(value):
        raise ma.ValidationError(CONTROL_TEXT)


#: The largest database id (PostgreSQL's integer): a larger number in a request is refused, never sent to the database.
MAX_ID = 2**31 - 1
UNENCODABLE_TEXT = "包含无法识别的字符"


def _text_problem(value) -> str | None:
    """What makes text in a request unusable anywhere, in any field: a lone surrogate (JSON's ``\\ud800``-``\\udfff``
    escapes can carry one; it cannot be stored or echoed as UTF-8) or a NUL (PostgreSQL cannot store or compare
    one, even in a query's filter).  Walks lists and objects iteratively."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return CONTROL_TEXT
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return UNENCODABLE_TEXT
        elif isinstance(item, Mapping):
            for key in item:
                stack.append(key)
                stack.append(item[key])
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return None


#: Dates and times a request may carry: anything outside is a typing slip, and near Python's own limits (years 1 and
#: 9999) a time zone conversion or a day added overflows.
YEARS = (1900, 2100)
YEARS_TEXT = f"日期应在{YEARS[0]}年至{YEARS[1]}年之间"


def _outside_years(value) -> bool:
    if isinstance(value, date):  # (a datetime is a date)
        return not YEARS[0] <= value.year <= YEARS[1]
    if isinstance(value, (list, tuple)):
        return any(_outside_years(v) for v in value)
    return False


class Schema(ma.Schema):
    """Base for every schema: unknown fields are an error, not silently dropped; text no field can use (a lone
    surrogate, a NUL) is refused before anything reads it; dates outside ``YEARS`` are refused."""

    class Meta:
        unknown = ma.RAISE
        ordered = True

    error_messages = {
        "unknown": "不支持的字段",
        "type": "请求内容应为 JSON 对象",
    }

    @ma.pre_load
    def _refuse_unusable_text(self, data, **kwargs):
        if isinstance(data, Mapping):
            bad = {}
            for key in data:  # one walk of the input, field by field
                problem = _text_problem(key) or _text_problem(data[key])
                if problem:
                    bad[str(key).encode("utf-8", "replace").decode("utf-8").replace("\x00", "?")] = [problem]
            if bad:
                raise ma.ValidationError(bad)
        return data

    @ma.post_load
    def _refuse_dates_outside_years(self, data, **kwargs):
        if isinstance(data, dict):
            bad = {key: [YEARS_TEXT] for key, value in data.items() if _outside_years(value)}
            if bad:
                raise ma.ValidationError(bad)
        return data


class ErrorSchema(Schema):
    code = fields.String(required=True, metadata={"description": "stable machine-readable error code"})
    message = fields.String(required=True, metadata={"description": "Chinese text for the user"})
    errors = fields.Dict(metadata={"description": "field -> list of Chinese messages"})
