"""Configuration: config.yaml merged over built-in defaults, then `--set key=value` overrides."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent

DEFAULTS: dict[str, Any] = {
    "server": {"host": "127.0.0.1", "port": 8888, "max_body_bytes": 1024 * 1024},
    "city": {"path": "data/cities/hangzhou-demo"},
    "storage": {"uri": "embedded", "database": "citydispatch"},
    "scheduler": {"sweep_seconds": 30, "enabled": True, "sweep_batch": 500, "daily_stats_at": "00:05",
                  "lease_seconds": 0},
    "deadlines": {"warning_fraction": 0.8, "supervise_grace": "1wh", "escalate_grace": "1wd"},
    "map": {"tile_url": ""},
    "auth": {"token_ttl": 12 * 3600, "secret": "", "allow_demo_passwords": False,
             "login_max_failures": 5, "address_max_failures": 20, "lockout_max_seconds": 900,
             "reveals_per_hour": 60},
    "workflow": {"reopen_days": 30, "checkin_within": "2h"},
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
    return config
