"""The Excel export of a programme's applications."""

import io
from urllib.parse import unquote

from openpyxl import load_workbook

from tests.api import assert_error, bearer, decide, make_world, pay, ready_application, staff_login, worker


def _export(client, token, program_id, query=""):
    return client.get(f"/api/admin/v1/subsidy/programs/{program_id}/export{query}", headers=bearer(token))


def test_export_has_chinese_headers_masked_ids_yuan_and_a_summary(client):
    world = make_world(review_levels=1)
    numbers, ids = [], []
    for name, org in (("alice", "factory"), ("bob", "factory"), ("carol", "mill")):
        token, number = worker(client, world, name, org=org)
        numbers.append(number)
        ids.append(ready_application(client, token, world.program.id, number=name, invoice=name,
                                     amount=123_456)["id"])
    reviewer, finance = staff_login(client, "city_reviewer"), staff_login(client, "city_finance")
    decide(client, reviewer, ids[0], decision="approve", amount_fen=100_050)
    pay(client, finance, ids[0], result="paid", reference="PAY-1")
    decide(client, reviewer, ids[1], decision="approve")

    response = _export(client, reviewer, world.program.id)
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    disposition = unquote(response.headers["Content-Disposition"])
    assert disposition.startswith("attachment") and f"补助申请-{world.program.id}-" in disposition
    assert disposition.endswith(".xlsx")
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["申请明细", "汇总"]
    sheet = book["申请明细"]
    rows = list(sheet.iter_rows(values_only=True))
    headers = rows[0]
    assert headers[:5] == ("申请编号", "姓名", "身份证号", "手机号", "所在工会")
    assert "申请金额（元）" in headers and "核定金额（元）" in headers and "状态" in headers
    assert [r[0] for r in rows[1:]] == ids
    id_col, approved_col = headers.index("身份证号"), headers.index("核定金额（元）")
    for row, number in zip(rows[1:], numbers):
        assert row[id_col] == number[:3] + "*" * 11 + number[-4:]
    every_value = " ".join(str(v) for r in rows for v in r if v is not None)
    assert not any(n in every_value for n in numbers) and "13800138000" not in every_value
    assert rows[1][approved_col] == 1000.5 and rows[1][headers.index("状态")] == "已发放"
    assert sheet.cell(row=2, column=approved_col + 1).number_format == "0.00"
    summary = {r[0]: r[1] for r in book["汇总"].iter_rows(min_row=2, values_only=True)}
    assert summary["已核准金额"] == (100_050 + 123_456) / 100
    assert summary["已发放金额"] == 1000.5
    assert summary["剩余可用金额"] == (25_000_000 - 100_050 - 123_456) / 100
    assert summary["已核准人数"] == 2 and summary["剩余名额"] == 98 and summary["状态：已提交"] == 1

    only_paid = load_workbook(io.BytesIO(_export(client, reviewer, world.program.id, "?status=paid").data))
    assert [r[0] for r in only_paid["申请明细"].iter_rows(min_row=2, values_only=True)] == [ids[0]]
    west = load_workbook(io.BytesIO(_export(client, reviewer, world.program.id,
                                            f"?org_id={world.orgs['west'].id}").data))
    assert [r[0] for r in west["申请明细"].iter_rows(min_row=2, values_only=True)] == [ids[2]]
    later = load_workbook(io.BytesIO(_export(client, reviewer, world.program.id, "?date_from=2099-01-01").data))
    assert later["申请明细"].max_row == 1
    # Staff of one district export only their own district's applications.
    west_rows = load_workbook(io.BytesIO(_export(client, staff_login(client, "west_reviewer"),
                                                 world.program.id).data))["申请明细"]
    assert [r[0] for r in west_rows.iter_rows(min_row=2, values_only=True)] == [ids[2]]


def test_export_refusals(client):
    world = make_world()
    token = staff_login(client, "city_reviewer")
    assert_error(_export(client, token, 9999), 404, "not_found")
    assert_error(_export(client, token, world.program.id, "?date_from=yesterday"), 422, "validation_error")
    assert_error(client.get(f"/api/admin/v1/subsidy/programs/{world.program.id}/export"), 401, "unauthorized")
