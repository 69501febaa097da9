#!/usr/bin/env bash
# Creates .venv (if missing) and installs the engine, its plugins and, with --test, what the
# test suite needs: Python packages from PyPI (the Phoenix server in .venv-phoenix of its own),
# and Debian's prometheus, chromium and postgresql (the tests start a real Prometheus and
# PostgreSQL and drive a real headless browser).
set -euo pipefail
cd "$(dirname "$0")/.."

# pip, quietly. A pip configured with local index folders that do not exist warns about
# each of them for every package it looks up (hundreds of lines on some machines, nothing
# the reader can act on here): those lines are dropped, every other message is kept.
pip_install() {
  "$1" -m pip install -q --disable-pip-version-check "${@:2}" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

python3 -m venv .venv 2>/dev/null || test -x .venv/bin/python
py=.venv/bin/python
pip_install $py --upgrade pip

plugins=()
for dir in plugins/*/; do
  [[ -f "$dir/pyproject.toml" ]] && plugins+=("-e" "${dir%/}")
done

if [[ "${1:-}" == "--test" ]]; then
  extras=()
  for dir in plugins/*/; do
    [[ -f "$dir/pyproject.toml" ]] && extras+=("-e" "${dir%/}[test]")
  done
  pip_install $py -e ".[test,examples]" "${extras[@]}"
  # The server's tests drive it with the reference client, unchanged, on this project's
  # engine: --no-deps keeps pip from installing llama-index-workflows over `workflows`.
  # The exact version is the compatibility target the server is tested against.
  pip_install $py --no-deps "llama-agents-client==0.4.1"
  # The Phoenix server the tests start lives in an environment of its own: .venv holds
  # arize-phoenix-otel only, as an application's would (see tests/support/phoenix.py).
  python3 -m venv .venv-phoenix 2>/dev/null || test -x .venv-phoenix/bin/python
  pip_install .venv-phoenix/bin/python -r tests/support/phoenix-server.txt
  missing=()
  command -v prometheus >/dev/null || missing+=(prometheus)
  [[ -x /usr/bin/chromium ]] || missing+=(chromium)
  compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(postgresql)
  if ((${#missing[@]})); then
    if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "note: ${missing[*]} not installed (needs root and apt-get); the tests that need them will be skipped" >&2
    fi
  fi
else
  pip_install $py -e ".[examples]" "${plugins[@]}"
fi
