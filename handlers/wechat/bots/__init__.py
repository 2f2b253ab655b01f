"""The bots UnionHub ships.  Importing this package registers them on the router."""

from . import binding, checkin, competitions, follow, help, menu, receipts, subsidies  # noqa: F401
