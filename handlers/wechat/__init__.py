"""The Official Account callback (/wechat) and its bots."""


def blueprints():
    from . import callback

    return [callback.blp]
