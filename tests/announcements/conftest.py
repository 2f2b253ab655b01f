import pytest

from server.services.staff import create_staff
from tests.api import PASSWORD, make_world


@pytest.fixture(autouse=True)
def _no_quiet_hours(app):
    """Tests send at any hour: no quiet hours unless a test sets them (restored afterwards)."""
    from dataclasses import replace

    ext = app.extensions["unionhub"]
    saved = ext["config"]
    ext["config"] = replace(saved, QUIET_HOURS="00:00-00:00", WECHAT_SEND_RATE=10_000)
    yield
    ext["config"] = saved


@pytest.fixture
def world():
    w = make_world()
    w.staff["west_organiser"] = create_staff("west_organiser", PASSWORD, w.orgs["west"], "organiser")
    from server.extensions import db

    db.commit()
    return w


@pytest.fixture
def sim(simulator):
    return simulator.app.extensions["simulator"]
