#!/usr/bin/env bash
# Create (or reuse) a Python venv the interop tests run reference clients in, and print its
# python. Usage: scripts/py-venv.sh DIR [REQUIREMENT...]; without requirements it holds the
# reference SDK (bittensor==11.3.0). Safe to call from concurrent tests (flock), idempotent, and
# loud on failure: interop tests must fail, never skip, when a reference client cannot be had.
set -euo pipefail
dir=${1:?usage: py-venv.sh DIR [REQUIREMENT...]}
shift
if [ "$#" -eq 0 ]; then
    set -- "bittensor==11.3.0"
fi
pin="$*"
python=${PYTHON:-python3}
mkdir -p "$(dirname "$dir")"
exec 9>"$dir.lock"
flock 9
if [ -x "$dir/bin/python" ] && [ -f "$dir/.ready" ] && [ "$(cat "$dir/.ready")" = "$pin" ]; then
    echo "$dir/bin/python"
    exit 0
fi
command -v "$python" >/dev/null || { echo "py-venv: $python not found; install Python 3.10+" >&2; exit 1; }
rm -rf "$dir"
"$python" -m venv "$dir" >&2
"$dir/bin/pip" install --disable-pip-version-check -q "$@" >&2
case "$pin" in
    *bittensor==*) "$dir/bin/python" -c "import bittensor.http_auth, bittensor.intents.weights" >&2 ;;
esac
echo "$pin" > "$dir/.ready"
echo "$dir/bin/python"
