# Sourced by scripts and benchmarks: a throwaway docker-registry on 127.0.0.1:<free port>,
# run by tests/support/registry.py (storage in a temp dir, removed when it stops).
#
#   registry_start WORKDIR [MODE]   sets REGISTRY_PID, REGISTRY_HOST and REGISTRY_INFO (a JSON file)
#   registry_stop                   stops it (and its storage); safe to call twice

REGISTRY_PID=
REGISTRY_HOST=
REGISTRY_INFO=

registry_start() {
  local workdir=$1 mode=${2:-plain}
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  REGISTRY_INFO=$(mktemp -u "$workdir/registry.XXXXXX.json")
  python3 "$root/tests/support/registry.py" --mode "$mode" --ready-file "$REGISTRY_INFO" \
    2>"$REGISTRY_INFO.err" &
  REGISTRY_PID=$!
  local i
  for i in $(seq 1 300); do
    [[ -f $REGISTRY_INFO ]] && break
    if ! kill -0 "$REGISTRY_PID" 2>/dev/null; then
      echo "registry did not start:" >&2
      cat "$REGISTRY_INFO.err" >&2
      REGISTRY_PID=
      return 1
    fi
    sleep 0.1
  done
  if [[ ! -f $REGISTRY_INFO ]]; then
    echo "registry did not become ready in 30s" >&2
    registry_stop
    return 1
  fi
  REGISTRY_HOST=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["host"])' "$REGISTRY_INFO")
}

registry_stop() {
  if [[ -n $REGISTRY_PID ]]; then
    if kill -0 "$REGISTRY_PID" 2>/dev/null; then
      kill -TERM "$REGISTRY_PID" 2>/dev/null || true
    fi
    wait "$REGISTRY_PID" 2>/dev/null || true
  fi
  if [[ -n $REGISTRY_INFO ]]; then
    rm -f "$REGISTRY_INFO" "$REGISTRY_INFO.err"
  fi
  REGISTRY_PID=
  REGISTRY_HOST=
  REGISTRY_INFO=
}
