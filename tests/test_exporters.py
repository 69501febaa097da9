"""WORKFLOWS_EXPORTERS: plugins found through the workflows.exporters entry points, without code.

Each test installs a small real distribution (a dist-info folder with entry points and a
module) on sys.path, so importlib.metadata discovers it exactly as it would a plugin.
"""

from __future__ import annotations

import logging
import sys
import uuid
from pathlib import Path

import pytest

from workflows.instrumentation import dispatcher, exporters
from workflows.instrumentation.exporters import (
    ExporterConfigurationError,
    configure_exporters_from_env,
    installed_exporters,
    requested_exporters,
)


@pytest.fixture
def fake_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Install exporters ``alpha``, ``beta`` (both record their calls) and ``broken`` (raises).

    Returns the module name; its ``calls`` list records which register functions ran.
    """
    module = f"fake_exporters_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "calls = []\n"
        "def alpha():\n    calls.append('alpha'); return 'alpha-setup'\n"
        "def beta():\n    calls.append('beta'); return 'beta-setup'\n"
        "def broken():\n    raise RuntimeError('endpoint unreachable')\n"
    )
    dist_info = tmp_path / f"{module}-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        f"[workflows.exporters]\nalpha = {module}:alpha\nbeta = {module}:beta\nbroken = {module}:broken\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(exporters, "_configured", None)
    return module


def calls(module: str) -> list[str]:
    return list(sys.modules[module].calls) if module in sys.modules else []


def test_names_are_read_as_a_trimmed_lower_case_list_without_duplicates() -> None:
    assert requested_exporters({"WORKFLOWS_EXPORTERS": " Phoenix, otlp,,phoenix "}) == ["phoenix", "otlp"]
    assert requested_exporters({}) == []


def test_installed_plugins_are_discovered_through_their_entry_points(fake_plugins: str) -> None:
    assert {"alpha", "beta", "broken"} <= set(installed_exporters())


def test_every_named_plugin_is_registered_in_order_and_its_result_returned(fake_plugins: str) -> None:
    result = configure_exporters_from_env({"WORKFLOWS_EXPORTERS": "beta,alpha"})
    assert result == {"beta": "beta-setup", "alpha": "alpha-setup"}
    assert calls(fake_plugins) == ["beta", "alpha"]


def test_plugins_are_registered_once_per_process(fake_plugins: str) -> None:
    first = configure_exporters_from_env({"WORKFLOWS_EXPORTERS": "alpha"})
    again = configure_exporters_from_env({"WORKFLOWS_EXPORTERS": "alpha,beta"})
    assert again is first
    assert calls(fake_plugins) == ["alpha"]


def test_an_unknown_name_raises_listing_the_installed_exporters_before_registering_any(fake_plugins: str) -> None:
    with pytest.raises(ExporterConfigurationError) as error:
        configure_exporters_from_env({"WORKFLOWS_EXPORTERS": "alpha,langfuze"})
    message = str(error.value)
    assert "langfuze" in message and "WORKFLOWS_EXPORTERS" in message
    assert "alpha, beta, broken" in message
    assert calls(fake_plugins) == []


def test_a_failing_plugin_raises_naming_it_when_called_explicitly(fake_plugins: str) -> None:
    with pytest.raises(ExporterConfigurationError, match="'broken'.*endpoint unreachable") as error:
        configure_exporters_from_env({"WORKFLOWS_EXPORTERS": "alpha,broken"})
    assert isinstance(error.value.__cause__, RuntimeError)
    assert calls(fake_plugins) == ["alpha"]


def test_the_automatic_set_up_logs_problems_and_registers_the_rest(
    fake_plugins: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WORKFLOWS_EXPORTERS", "nope,broken,beta")
    with caplog.at_level(logging.ERROR, logger="workflows.instrumentation.exporters"):
        exporters._configure_before_first_run()
    assert calls(fake_plugins) == ["beta"]
    messages = [record.getMessage() for record in caplog.records]
    assert any("nope" in m and "Installed exporters" in m for m in messages)
    assert any("'broken'" in m for m in messages)


def test_the_automatic_set_up_is_hooked_before_the_first_run() -> None:
    assert exporters._configure_before_first_run in dispatcher._configure_hooks


def test_nothing_is_loaded_when_the_variable_is_unset(fake_plugins: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKFLOWS_EXPORTERS", raising=False)
    assert configure_exporters_from_env() == {}
    assert calls(fake_plugins) == []
