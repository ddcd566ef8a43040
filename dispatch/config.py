"""Configuration: config.yaml merged over built-in defaults, then `--set key=value` overrides."""

from __future__ import annotations

import copy
import ipaddress
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent

DEFAULTS: dict[str, Any] = {
    "server": {"host": "127.0.0.1", "port": 8888, "workers": 1, "max_body_bytes": 1024 * 1024,
               "max_request_bytes": 16 * 1024 * 1024, "trusted_proxies": [],
               "header_timeout": 10, "body_timeout": 60,
               "live_sockets_per_user": 10, "live_sockets_per_address": 50, "live_recheck_seconds": 5},
    "city": {"path": "data/cities/hangzhou-demo"},
    "storage": {"uri": "embedded", "database": "citydispatch"},
    "scheduler": {"sweep_seconds": 30, "enabled": True, "sweep_batch": 500, "daily_stats_at": "00:05",
                  "lease_seconds": 0},
    "deadlines": {"warning_fraction": 0.8, "supervise_grace": "1wh", "escalate_grace": "1wd"},
    "map": {"tile_url": "", "overlay_url": "", "attribution": "", "subdomains": "", "max_zoom": 18},
    "auth": {"token_ttl": 12 * 3600, "secret": "", "allow_random_secret": False, "allow_demo_passwords": False,
             "login_max_failures": 5, "address_max_failures": 20, "lockout_max_seconds": 900,
             "account_slow_after": 10, "account_slow_seconds": 2, "trusted_device_days": 30,
             "hash_concurrency": 2, "hash_queue": 8,
             "reveals_per_hour": 60, "reveal_roles": ["call_taker", "callback_operator", "admin"]},
    "workflow": {"reopen_days": 30, "checkin_within": "2h"},
    "attachments": {"pending_max_count": 30, "pending_max_mb": 30, "pending_window_hours": 24,
                    "expire_unreferenced_hours": 24},
}


class ConfigError(ValueError):
    pass


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def set_key(config: dict, dotted: str, value: Any) -> None:
    """Set `a.b.c` in a nested dict, creating sections as needed."""
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"配置项名称无效: {dotted!r}")
    node = config
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"配置项 {dotted!r}: {part!r} 不是一个配置段")
        node = child
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """`key=value`; the value is read as YAML so numbers and booleans keep their type."""
    if "=" not in text:
        raise ConfigError(f"--set 需要 key=value 形式，收到 {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> dict:
    config = copy.deepcopy(DEFAULTS)
    config_path = Path(path) if path else ROOT / "config.yaml"
    if path or config_path.exists():
        try:
            loaded = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"配置文件不存在: {config_path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"配置文件 {config_path} 不是有效的 YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"配置文件 {config_path} 顶层必须是映射")
        _merge(config, loaded)
    for item in overrides or []:
        set_key(config, *parse_override(item))
    city_path = Path(config["city"]["path"])
    if not city_path.is_absolute():
        city_path = (config_path.parent if config_path.exists() else ROOT) / city_path
    config["city"]["path"] = str(city_path)
    _normalise_lists(config)
    return config


def _as_list(value) -> list:
    """A YAML list, or the comma-separated string `--set a=x,y` gives."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return [str(part).strip() for part in value]
    raise ConfigError(f"应为列表或逗号分隔的字符串，收到 {value!r}")


def _normalise_lists(config: dict) -> None:
    """Check the list-valued security settings once, at start: a typo must not start a server
    that silently trusts nobody or everybody."""
    from dispatch.access.policy import REVEAL_RULES  # policy imports nothing from here

    server, auth = config["server"], config["auth"]
    server["trusted_proxies"] = _as_list(server.get("trusted_proxies"))
    for entry in server["trusted_proxies"]:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(f"server.trusted_proxies: {entry!r} 不是 IP 地址或网段（CIDR）") from None
    auth["reveal_roles"] = _as_list(auth.get("reveal_roles"))
    for entry in auth["reveal_roles"]:
        if entry not in REVEAL_RULES:
            raise ConfigError(f"auth.reveal_roles: 未知的 {entry!r}，可选: {', '.join(REVEAL_RULES)}")
