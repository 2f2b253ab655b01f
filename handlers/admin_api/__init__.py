"""The staff REST API under /api/admin/v1."""


def blueprints():
    from . import auth, competitions, subsidies, wechat

    return [auth.blp, subsidies.blp, competitions.blp, wechat.blp]
