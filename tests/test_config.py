"""config.yaml + `--set key=value` overrides, and the server's command-line options."""

import pytest

from dispatch.config import ConfigError, load_config
from server import build_config, parse_args


def test_defaults_from_config_yaml():
    config = load_config()
    assert config["storage"]["uri"] == "embedded"
    assert config["scheduler"]["sweep_seconds"] == 30
    assert config["deadlines"]["warning_fraction"] == 0.8
    assert config["map"]["tile_url"] == ""
    assert config["city"]["path"].endswith("data/cities/hangzhou-demo")


def test_set_overrides_keep_types_and_create_sections():
    config = load_config(None, ["scheduler.sweep_seconds=2", "map.tile_url=http://t/{z}/{x}/{y}.png",
                                "storage.uri=mongodb://localhost:27017", "extra.flag=true"])
    assert config["scheduler"]["sweep_seconds"] == 2
    assert config["map"]["tile_url"] == "http://t/{z}/{x}/{y}.png"
    assert config["storage"]["uri"] == "mongodb://localhost:27017"
    assert config["extra"]["flag"] is True


def test_command_line_options_map_to_config(tmp_path):
    args = parse_args(["--city", str(tmp_path), "--port", "9999", "--host", "0.0.0.0",
                       "--set", "deadlines.warning_fraction=0.7"])
    config = build_config(args)
    assert config["city"]["path"] == str(tmp_path)
    assert config["server"]["port"] == 9999 and config["server"]["host"] == "0.0.0.0"
    assert config["deadlines"]["warning_fraction"] == 0.7


@pytest.mark.parametrize("bad", ["novalue", "=3", "a..b=1"])
def test_bad_overrides_are_refused(bad):
    with pytest.raises(ConfigError):
        load_config(None, [bad])


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="不存在"):
        load_config(tmp_path / "nope.yaml")
