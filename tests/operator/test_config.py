"""The operator's own settings, read from the environment."""

from __future__ import annotations

import pytest

from twitter_operator.runner import ConfigurationError, OperatorConfig


def test_defaults_serve_every_namespace() -> None:
    config = OperatorConfig.from_environment({})

    assert config.namespaces == ()
    assert config.resync_seconds == 30.0
    assert config.liveness_endpoint == "http://0.0.0.0:8080/healthz"


def test_namespaces_are_comma_separated() -> None:
    config = OperatorConfig.from_environment({
        "TWITTER_OPERATOR_NAMESPACES": " twitter, staging ,",
        "TWITTER_OPERATOR_RESYNC_SECONDS": "12.5",
        "TWITTER_OPERATOR_LIVENESS_ENDPOINT": "",
    })

    assert config.namespaces == ("twitter", "staging")
    assert config.resync_seconds == 12.5
    assert config.liveness_endpoint is None


@pytest.mark.parametrize("value", ["soon", "0", "-5"])
def test_bad_resync_is_rejected(value: str) -> None:
    with pytest.raises(ConfigurationError, match="TWITTER_OPERATOR_RESYNC_SECONDS"):
        OperatorConfig.from_environment({"TWITTER_OPERATOR_RESYNC_SECONDS": value})
