#!/usr/bin/env bash
# Runs the pinned Chopsticks (tools/chopsticks) on a genesis chain spec, offline, on loopback,
# producing blocks only on `dev_newBlock`.
#
#   scripts/chopsticks.sh <port> [raw chain spec]
#
# The spec defaults to $ORCHESTRA_CHAIN_SPEC, then ../shared/chain/raw_spec_testfinney.json next to
# the clone. Installs the pinned package first if it is missing. Never pass `-c <name>`: Chopsticks
# would fetch that config from the network.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${1:?usage: scripts/chopsticks.sh <port> [raw chain spec]}
spec=${2:-${ORCHESTRA_CHAIN_SPEC:-$root/../shared/chain/raw_spec_testfinney.json}}
dir=$root/tools/chopsticks

command -v node >/dev/null || { echo "chopsticks.sh: node not found (install Node.js >= 20)" >&2; exit 127; }
command -v npm >/dev/null || { echo "chopsticks.sh: npm not found (install npm)" >&2; exit 127; }
[ -f "$spec" ] || { echo "chopsticks.sh: chain spec not found: $spec (set ORCHESTRA_CHAIN_SPEC)" >&2; exit 2; }

if [ ! -x "$dir/node_modules/.bin/chopsticks" ]; then
    echo "chopsticks.sh: installing pinned @acala-network/chopsticks into $dir" >&2
    # --ignore-scripts skips a native sqlite3 build that only `--db` needs.
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund >&2) \
        || { echo "chopsticks.sh: npm ci failed in $dir" >&2; exit 3; }
fi

# exec: the caller's pid is Chopsticks itself, so killing it stops the node. The preload makes it
# exit when ORCHESTRA_PARENT_PID (set by orchestra-devnet) is no longer its parent.
exec node --require "$root/scripts/exit-with-parent.cjs" "$dir/node_modules/.bin/chopsticks" \
    --genesis "$spec" --host 127.0.0.1 --port "$port" \
    --allow-unresolved-imports --build-block-mode Manual
