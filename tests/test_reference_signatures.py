"""Every public name of LlamaIndex Workflows 2.26.1 is called the same way here.

The reference is installed from PyPI into a throwaway venv (cached under
``.venv/cache``), where ``support/dump_signatures.py`` describes each public name of the
module map (``shared/API.md`` section 0): parameter names, kinds and defaults, and the
public methods of classes. The same script describes this engine in-process. Each
difference must be fixed or listed, with its reason, in ``support/signature_allowlist.py``
and in ``docs/compatibility.md``.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest
from support.dump_signatures import main as dump_signatures
from support.module_map import MODULE_MAP
from support.signature_allowlist import SIGNATURE_ALLOWLIST
from support.signature_diff import differences
from support.venvs import REPO, cached_venv, pip_install, run_python

REFERENCE = "llama-index-workflows==2.26.1"
DUMP_SCRIPT = Path(__file__).parent / "support" / "dump_signatures.py"


@pytest.fixture(scope="session")
def reference_signatures() -> dict:
    python = cached_venv("reference-workflows", REFERENCE, lambda py: pip_install(py, REFERENCE))
    spec = json.dumps(list(MODULE_MAP.items()))
    # Run from a neutral directory, so that this checkout's src/ cannot shadow the reference.
    return json.loads(run_python(python, str(DUMP_SCRIPT), spec, timeout=120))


@pytest.fixture(scope="session")
def signature_differences(reference_signatures: dict) -> dict[str, str]:
    return differences(reference_signatures, dump_signatures(list(MODULE_MAP.items())))


def _allowed(key: str) -> str | None:
    return next((pattern for pattern in SIGNATURE_ALLOWLIST if fnmatch.fnmatchcase(key, pattern)), None)


def test_the_reference_venv_describes_the_reference(reference_signatures: dict):
    # A dump of our own src would make every comparison pass.
    assert "journal" in reference_signatures["workflows.plugins.BasicRuntime"]["methods"]
    assert reference_signatures["workflows.resource.Resource"]["kind"] == "function"


def test_public_signatures_match_the_reference(signature_differences: dict[str, str]):
    unexpected = {k: v for k, v in signature_differences.items() if _allowed(k) is None}
    assert not unexpected, "Signatures that differ from llama-index-workflows 2.26.1 (fix them, or allow-list " \
        "them with a reason in tests/support/signature_allowlist.py and docs/compatibility.md):\n" + "\n".join(
            f"  {k}: {v}" for k, v in unexpected.items()
        )


def test_every_allowlist_entry_is_still_needed(signature_differences: dict[str, str]):
    stale = [p for p in SIGNATURE_ALLOWLIST if not any(fnmatch.fnmatchcase(k, p) for k in signature_differences)]
    assert not stale, f"These allow-list entries match no difference any more; remove them (and from the docs): {stale}"


def test_docs_list_every_allowlist_entry():
    docs = (REPO / "docs" / "compatibility.md").read_text()
    missing = [p for p in SIGNATURE_ALLOWLIST if f"`{p}`" not in docs]
    assert not missing, f"docs/compatibility.md does not list these signature differences: {missing}"


def test_the_retry_building_blocks_take_the_reference_keywords():
    from workflows.retry_policy import (
        retry_all,
        retry_if_exception_cause_type,
        retry_if_exception_type,
        retry_if_not_exception_type,
        retry_policy,
        stop_after_attempt,
        stop_any,
        wait_fixed,
    )

    policy = retry_policy(
        retry=retry_all(retry_if_exception_type(exception_types=(KeyError, ValueError)),
                        retry_if_not_exception_type(exception_types=KeyError)),
        wait=wait_fixed(wait=0),
        stop=stop_any(stop_after_attempt(max_attempt_number=2)),
    )
    assert policy.next(0.0, 1, ValueError("x")) == 0.0
    assert policy.next(0.0, 2, ValueError("x")) is None  # two attempts in all
    assert policy.next(0.0, 1, KeyError("x")) is None
    caused = RuntimeError("outer")
    caused.__cause__ = OSError("inner")
    assert retry_if_exception_cause_type(exception_types=OSError)(caused)
    assert wait_fixed(2)(attempts=3) == 2.0
