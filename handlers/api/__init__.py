"""The mini-program REST API under /api/v1."""


def blueprints():
    from . import announcements, auth, competition_results, competitions, inbox, me, orgs, subsidies

    return [orgs.blp, auth.blp, me.blp, subsidies.blp, competitions.blp, competition_results.blp, inbox.blp, announcements.blp]
