"""Read models the Official Account bots show: a worker's applications and entries, places left."""

from __future__ import annotations

from server.models import Competition, Person
from server.services.competitions import entry_view, list_person_entries, places_left
from server.services.subsidies import application_view, list_person_applications, yuan
from server.timeutil import fmt_local


def competition_places_left(competition: Competition) -> int:
    """Places not held by a confirmed, pending or offered entry."""
    return places_left(competition)


def application_lines(person: Person) -> list[str]:
    """One line per subsidy application, newest first: status, amounts, a return's reason and deadline."""
    lines = []
    for app in list_person_applications(person)[:10]:
        view = application_view(app, detail=False)
        detail = view["status_label"]
        if view["approved_fen"]:
            detail += f"，核定{yuan(view['approved_fen'])}元"
        if view["status"] == "returned":
            detail += f"：{view['reason']}，请于{fmt_local(view['return_deadline'], '%m月%d日%H:%M')}前在小程序补充"
        lines.append(f"【{view['program_name']}·{view['kind_label']}】{detail}")
    return lines


def entry_lines(person: Person) -> list[str]:
    """One line per competition entry, newest first: status, waiting-list position, candidate number, deadline."""
    lines = []
    for entry in list_person_entries(person)[:10]:
        view = entry_view(entry)
        detail = view["status_label"]
        if view["position"]:
            detail += f"（第{view['position']}位）"
        if view["candidate_number"]:
            detail += f"，准考证号{view['candidate_number']}" + ("，已签到" if view["checked_in_at"] else "")
        if view["offer_expires_at"]:
            detail += f"，请于{fmt_local(view['offer_expires_at'], '%m月%d日%H:%M')}前在小程序确认"
        lines.append(f"【{view['competition_name']}】{detail}")
    return lines
