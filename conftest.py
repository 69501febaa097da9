"""Fixtures shared by the core's and the plugins' tests (real servers started on loopback).

Each module under tests/support owns one real resource (a Phoenix server, an OTLP
capture receiver, a scripted OpenAI-compatible server) and the fixtures that start and
stop it; they are registered here so every test folder of the repository can use them.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent / "tests"))

pytest_plugins = [
    "support.phoenix",
    "support.otlp_receiver",
    "support.openai_server",
    "support.postgres",
]
