"""Excel exports for the venue: entry list, check-in list, results."""

import io
from urllib.parse import unquote

from openpyxl import load_workbook

from tests.api import assert_error, bearer, staff_login
from tests.competition_helpers import entrant, sign_up

from .conftest import BASE


def _export(client, headers, cid, kind):
    return client.get(f"{BASE}/{cid}/export?kind={kind}", headers=headers)


def _book(response, name: str):
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    disposition = unquote(response.headers["Content-Disposition"])
    assert disposition.startswith("attachment") and name in disposition and disposition.endswith(".xlsx")
    return load_workbook(io.BytesIO(response.data))


def test_entry_checkin_and_result_lists(client, world, organiser, field):
    f = field(3, arrived=2)
    cid = f.competition_id
    numbers = [p.plain_id_number for p, _, _ in f.people]
    # A withdrawn entrant is left out of the venue list.
    _, late = entrant(world, real_name="赵六")
    sign_up(client, late, cid)
    client.delete(f"/api/v1/competitions/{cid}/entries/mine", headers=bearer(late))

    book = _book(_export(client, organiser, cid, "entries"), f"竞赛报名名单-{cid}-")
    rows = list(book["报名名单"].iter_rows(values_only=True))
    assert rows[0] == ("序号", "准考证号", "姓名", "身份证号", "所在工会", "工种", "报名状态", "报名时间")
    assert [r[2] for r in rows[1:]] == ["张三明", "李四", "欧阳娜娜"]
    assert all(r[1] and r[1].startswith(f"{cid:03d}") for r in rows[1:])
    assert [r[3] for r in rows[1:]] == [n[:3] + "*" * 11 + n[-4:] for n in numbers]
    assert {r[4] for r in rows[1:]} == {"东湖机械厂工会"} and {r[5] for r in rows[1:]} == {"焊工"}
    assert {r[6] for r in rows[1:]} == {"报名成功"}
    everything = " ".join(str(v) for r in rows for v in r if v is not None)
    assert not any(n in everything for n in numbers) and "13800138000" not in everything

    book = _book(_export(client, organiser, cid, "checkins"), f"竞赛签到表-{cid}-")
    rows = list(book["签到表"].iter_rows(values_only=True))
    assert rows[0] == ("序号", "准考证号", "姓名", "身份证号", "所在工会", "签到状态", "签到时间", "签到方式")
    assert [(r[2], r[5], bool(r[6]), r[7]) for r in rows[1:]] == [
        ("张三明", "已签到", True, "工作人员扫码"), ("李四", "已签到", True, "工作人员扫码"), ("欧阳娜娜", "未签到", False, None)]
    assert rows[1][3].count("*") == 11
    summary = dict(book["汇总"].iter_rows(min_row=2, values_only=True))
    assert summary == {"应到人数": 3, "实到人数": 2, "未到人数": 1}

    for n, (theory, judges) in enumerate([(80, [70, 90]), (90, [85])]):
        body = {"theory": theory, "practical": [{"judge": f"{i}号", "score": s} for i, s in enumerate(judges, 1)]}
        assert client.put(f"{BASE}/{cid}/entries/{f.entry(n)}/scores", json=body, headers=organiser).status_code == 200
    book = _book(_export(client, organiser, cid, "results"), f"竞赛成绩表-{cid}-")
    sheet = book["成绩表"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("名次", "准考证号", "姓名", "身份证号", "所在工会", "理论成绩（40%）", "实操评委1", "实操评委2",
                       "实操成绩（60%）", "总成绩")
    assert rows[1][:3] == (1, rows[1][1], "李四") and rows[1][5:] == (90, 85, None, 85, 87)  # 36 + 51
    assert rows[2][0] == 2 and rows[2][2] == "张三明" and rows[2][5:] == (80, 70, 90, 80, 80)
    assert rows[3][0] == "缺考/成绩不全" and rows[3][2] == "欧阳娜娜" and rows[3][9] is None
    assert sheet.cell(row=2, column=10).number_format == "0.00" and rows[1][3].count("*") == 11
    notes = dict(book["说明"].iter_rows(min_row=2, values_only=True))
    assert notes["成绩状态"] == "成绩录入中" and notes["去掉最高分和最低分"] == "否"


def test_export_refusals(client, world, organiser, field):
    cid = field(1, arrived=0).competition_id
    for kind in ("", "pdf", "ENTRIES"):
        assert_error(_export(client, organiser, cid, kind), 422, "validation_error")
    assert_error(client.get(f"{BASE}/{cid}/export", headers=organiser), 422, "validation_error")
    assert_error(_export(client, organiser, 999999, "entries"), 404, "not_found")
    assert_error(_export(client, bearer(staff_login(client, "west_organiser")), cid, "entries"), 404, "not_found")
    assert_error(_export(client, bearer(staff_login(client, "city_finance")), cid, "entries"), 403, "role_forbidden")
    assert_error(_export(client, {}, cid, "entries"), 401, "unauthorized")
