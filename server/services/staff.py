"""Staff accounts: password hashing and creation.

Passwords are stored only as werkzeug hashes (scrypt/pbkdf2 with a salt).
The ``create-admin`` CLI command and the demo data both create accounts
through :func:`create_staff`, so the same rules apply everywhere.
"""

from __future__ import annotations

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from server.extensions import db
from server.models import Organisation, Staff, StaffRole


def hash_password(password: str) -> str:
    """A salted hash of ``password`` for ``Staff.password_hash``."""
    return generate_password_hash(password)


def verify_password(staff: Staff | None, password: str | None) -> bool:
    """True when ``password`` matches the account's hash.

    Only the password is checked here; whether the account is active is the
    login code's decision.
    """
    if staff is None or not staff.password_hash or not password:
        return False
    return check_password_hash(staff.password_hash, password)


def create_staff(
    username: str,
    password: str,
    org: Organisation | int,
    role: StaffRole | str,
    display_name: str | None = None,
) -> Staff:
    """Create a staff account in ``org`` (flushed, not committed).

    Raises ValueError with an English message for an empty or taken
    username, an empty password, an unknown role or an unknown organisation.
    """
    username = (username or "").strip()
    if not username:
        raise ValueError("username must not be empty")
    if len(username) > 64:
        raise ValueError("username must be at most 64 characters")
    if not password:
        raise ValueError("password must not be empty")
    try:
        role = StaffRole(role)
    except ValueError:
        allowed = ", ".join(r.value for r in StaffRole)
        raise ValueError(f"unknown role {role!r}; expected one of: {allowed}") from None
    if not isinstance(org, Organisation):
        found = db.get(Organisation, org)
        if found is None:
            raise ValueError(f"organisation {org!r} does not exist")
        org = found
    if db.scalar(select(Staff.id).where(Staff.username == username)) is not None:
        raise ValueError(f"username {username!r} is already taken")
    staff = Staff(
        username=username,
        password_hash=hash_password(password),
        display_name=display_name,
        org=org,
        org_id=org.id,
        role=role.value,
    )
    db.add(staff)
    db.flush()
    return staff
