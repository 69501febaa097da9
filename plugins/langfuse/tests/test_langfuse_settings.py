"""Settings come from arguments or Langfuse's usual environment variables, and bad or
missing ones are refused with a message that says what to set."""

from __future__ import annotations

import base64

import pytest
import workflows_langfuse
from workflows_langfuse.settings import LangfuseConfigurationError, resolve


def test_missing_keys_error_names_both_variables() -> None:
    with pytest.raises(LangfuseConfigurationError) as raised:
        workflows_langfuse.register()

    message = str(raised.value)
    assert "LANGFUSE_PUBLIC_KEY" in message and "LANGFUSE_SECRET_KEY" in message
    assert "public_key=" in message and "secret_key=" in message


def test_missing_secret_key_error_names_only_that_variable() -> None:
    with pytest.raises(LangfuseConfigurationError, match="set LANGFUSE_SECRET_KEY \\(") as raised:
        resolve(environ={"LANGFUSE_PUBLIC_KEY": "pk-lf-1"})

    assert "LANGFUSE_PUBLIC_KEY" not in str(raised.value).split("(")[0]


def test_settings_are_read_from_langfuse_environment_variables() -> None:
    settings = resolve(
        environ={
            "LANGFUSE_PUBLIC_KEY": "pk-lf-env",
            "LANGFUSE_SECRET_KEY": "sk-lf-env",
            "LANGFUSE_BASE_URL": "https://langfuse.example.com/",
            "LANGFUSE_TRACING_ENVIRONMENT": "staging",
            "LANGFUSE_RELEASE": "v1.2.3",
            "LANGFUSE_TIMEOUT": "2.5",
            "LANGFUSE_SAMPLE_RATE": "0.25",
        }
    )

    assert settings.endpoint == "https://langfuse.example.com/api/public/otel/v1/traces"
    assert (settings.environment, settings.release, settings.timeout, settings.sample_rate) == (
        "staging",
        "v1.2.3",
        2.5,
        0.25,
    )
    scheme, credentials = settings.headers["Authorization"].split(" ")
    assert scheme == "Basic" and base64.b64decode(credentials) == b"pk-lf-env:sk-lf-env"
    assert settings.headers["x-langfuse-ingestion-version"] == "4"
    assert "sk-lf-env" not in repr(settings)


def test_arguments_win_over_environment_and_legacy_host_variable_is_honoured() -> None:
    environ = {"LANGFUSE_PUBLIC_KEY": "pk-env", "LANGFUSE_SECRET_KEY": "sk-env", "LANGFUSE_HOST": "http://old:3000"}

    from_env = resolve(environ=environ)
    from_args = resolve("pk-arg", "sk-arg", "http://new:3000", environ=environ)

    assert from_env.base_url == "http://old:3000"
    assert (from_args.public_key, from_args.base_url) == ("pk-arg", "http://new:3000")


def test_default_host_is_langfuse_cloud_and_export_path_can_be_changed() -> None:
    default = resolve("pk", "sk", environ={})
    custom = resolve("pk", "sk", environ={"LANGFUSE_OTEL_TRACES_EXPORT_PATH": "/otel/v1/traces"})

    assert default.endpoint == "https://cloud.langfuse.com/api/public/otel/v1/traces"
    assert custom.endpoint == "https://cloud.langfuse.com/otel/v1/traces"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"host": "langfuse.example.com"}, "is not a URL"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"sample_rate": 1.5}, "between 0 and 1"),
    ],
)
def test_unusable_settings_are_refused_with_an_explanation(overrides: dict, expected: str) -> None:
    with pytest.raises(LangfuseConfigurationError, match=expected):
        resolve("pk", "sk", **{"environ": {}, **overrides})


def test_non_numeric_timeout_variable_is_refused_naming_the_variable() -> None:
    with pytest.raises(LangfuseConfigurationError, match="LANGFUSE_TIMEOUT='soon'"):
        resolve("pk", "sk", environ={"LANGFUSE_TIMEOUT": "soon"})
