"""Differences between two ``dump_signatures`` outputs, as one readable line each."""

from __future__ import annotations

from typing import Any


def _render(signature: Any) -> str:
    if isinstance(signature, str):
        return signature
    parts = []
    for p in signature:
        text = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(p["kind"], "") + p["name"]
        if p["kind"] == "KEYWORD_ONLY":
            text = "kw:" + text
        elif p["kind"] == "POSITIONAL_ONLY":
            text = "pos:" + text
        if p["default"] is not None:
            text += "=" + p["default"]
        parts.append(text)
    return "(" + ", ".join(parts) + ")"


def differences(reference: dict[str, Any], ours: dict[str, Any]) -> dict[str, str]:
    """``{key: description}`` for every reference name (or method) ours lacks or calls differently.

    Keys are ``module.Name`` or ``module.Name.method``; names only ours has are fine.
    """
    found: dict[str, str] = {}
    for key, ref in sorted(reference.items()):
        mine = ours.get(key, {"kind": "missing"})
        if mine["kind"] != ref["kind"] and {mine["kind"], ref["kind"]} != {"class", "function"}:
            found[key] = f"is a {mine['kind']} here, a {ref['kind']} in the reference"
            continue
        # A class called like the reference's factory function is the same call: compare signatures.
        if "signature" in ref and ref["signature"] != mine.get("signature"):
            found[key] = f"takes {_render(mine.get('signature', []))} here, {_render(ref['signature'])} in the reference"
        if ref["kind"] == "enum" and ref["members"] != mine.get("members"):
            found[key] = f"has members {mine['members']} here, {ref['members']} in the reference"
        for method, ref_sig in ref.get("methods", {}).items():
            mine_sig = mine.get("methods", {}).get(method)
            mkey = f"{key}.{method}"
            if mine_sig is None:
                found[mkey] = "is missing here"
            elif ref_sig != mine_sig:
                if "property" in (ref_sig, mine_sig):
                    found[mkey] = f"is a {'property' if mine_sig == 'property' else 'method'} here, not in the reference"
                else:
                    found[mkey] = f"takes {_render(mine_sig)} here, {_render(ref_sig)} in the reference"
    return found
