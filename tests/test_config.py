"""The trust domain's config file: written as a person would write it, read strictly."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from warrant.config import DomainConfig, load_config, render_config
from warrant.errors import ConfigError


def test_a_written_config_reads_back_the_same_with_numbers_as_numbers(tmp_path: Path) -> None:
    written = DomainConfig(domain="acme.example", flow_injection_threshold=0.35)
    text = render_config(written)
    assert tomllib.loads(text)["flow_injection_threshold"] == 0.35  # a float, not "0.35"
    (tmp_path / "config.toml").write_text(text)
    assert load_config(tmp_path) == written


@pytest.mark.parametrize("value", ["nan", "inf", "1.5", "\"high\""])
def test_a_threshold_that_is_not_a_number_from_0_to_1_is_refused(tmp_path: Path,
                                                                   value: str) -> None:
    text = render_config(DomainConfig(domain="acme.example")).replace(
        "flow_injection_threshold = 0.5", f"flow_injection_threshold = {value}")
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match="flow_injection_threshold"):
        load_config(tmp_path)
