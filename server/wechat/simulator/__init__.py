"""A stand-in for WeChat's servers (api.weixin.qq.com, the WeCom group-bot webhook) for dev and tests."""

from .app import create_simulator_app
from .state import SimState

__all__ = ["create_simulator_app", "SimState"]
