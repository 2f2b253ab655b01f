"""The mini-program REST API under /api/v1."""


def blueprints():
    from . import orgs

    return [orgs.blp]
