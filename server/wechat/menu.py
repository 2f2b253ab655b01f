"""The Official Account menu, kept as configuration (menu.json) and created through WeChat's API."""

from __future__ import annotations

import json
import string
from pathlib import Path

DEFAULT_MENU = Path(__file__).with_name("menu.json")


def load_menu(path: str | Path | None = None, config=None) -> dict:
    """Read a menu file, filling ``${SETTING}`` placeholders from the configuration."""
    text = Path(path or DEFAULT_MENU).read_text(encoding="utf-8")
    if config is not None:
        text = string.Template(text).safe_substitute({k: v for k, v in vars(config).items() if isinstance(v, str)})
    menu = json.loads(text)
    problems = validate_menu(menu)
    if problems:
        raise ValueError("; ".join(problems))
    return menu


def validate_menu(menu: dict) -> list[str]:
    """WeChat's limits: at most 3 buttons of 4 characters' width, 5 sub-buttons each, keys for clicks."""
    problems = []
    buttons = menu.get("button") or []
    if not 1 <= len(buttons) <= 3:
        problems.append("the menu needs 1 to 3 top-level buttons")
    for button in buttons:
        subs = button.get("sub_button") or []
        if len(subs) > 5:
            problems.append(f"{button.get('name')}: at most 5 sub-buttons")
        for item in subs or [button]:
            if item.get("type") in ("click", "scancode_push", "scancode_waitmsg") and not item.get("key"):
                problems.append(f"{item.get('name')}: a {item['type']} button needs a key")
            if item.get("type") == "miniprogram" and "${" in item.get("appid", "${"):
                problems.append(f"{item.get('name')}: miniprogram button needs an appid")
    return problems


def menu_keys(menu: dict) -> set[str]:
    keys = set()
    for button in menu.get("button", []):
        for item in button.get("sub_button") or [button]:
            if item.get("key"):
                keys.add(item["key"])
    return keys
