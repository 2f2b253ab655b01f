"""The staff REST API under /api/admin/v1."""


def blueprints():
    from . import announcements, auth, competition_results, competitions, ops, subsidies, wechat

    return [auth.blp, subsidies.blp, competitions.blp, competition_results.blp, wechat.blp, announcements.blp, ops.blp]
