"""The staff REST API under /api/admin/v1."""


def blueprints():
    return []
