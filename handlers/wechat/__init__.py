"""The Official Account callback (/wechat) and its bots."""


def blueprints():
    return []
