"""The mini-program REST API under /api/v1."""


def blueprints():
    from . import auth, competitions, me, orgs, subsidies

    return [orgs.blp, auth.blp, me.blp, subsidies.blp, competitions.blp]
