#!/usr/bin/env bash
# tagwarden push vs skopeo copy, side by side, on one machine in one run.
#
# Builds tagwarden, writes once a 1 GiB OCI image (8 incompressible layers of 128 MiB) into
# bench/work/, then runs BENCH_ROUNDS rounds of: fresh registry + `tagwarden push` (timed),
# fresh registry + `skopeo copy` (timed). Wall time and peak RSS come from /usr/bin/time.
# Writes the report to bench/RESULTS.md (BENCH_RESULTS overrides).
#
# Environment: BENCH_ROUNDS (3), BENCH_LAYERS (8), BENCH_LAYER_SIZE (134217728 bytes),
#              BENCH_JOBS (tagwarden --jobs; default: the tool's), BENCH_RESULTS, BUILD_DIR,
#              TAGWARDEN_BIN (use this binary, skip the build).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=../scripts/lib/registry.sh
source scripts/lib/registry.sh

rounds=${BENCH_ROUNDS:-3}
layers=${BENCH_LAYERS:-8}
layer_size=${BENCH_LAYER_SIZE:-134217728}
results=${BENCH_RESULTS:-$root/bench/RESULTS.md}
jobs_args=()
if [[ -n ${BENCH_JOBS:-} ]]; then jobs_args=(--jobs "$BENCH_JOBS"); fi

./scripts/bootstrap
if [[ -n ${TAGWARDEN_BIN:-} ]]; then
  tagwarden=$TAGWARDEN_BIN # an already built binary: skip the build
else
  ./scripts/build >&2
  tagwarden=$root/${BUILD_DIR:-build}/tagwarden
fi
skopeo=$(command -v skopeo)
# The bench measures transfer, not the guards: the throwaway registry declares no lifecycle policy.
export TAGWARDEN_ALLOW_NO_LIFECYCLE_POLICY=true

work=$root/bench/work
mkdir -p "$work"
image=$work/image-${layers}x${layer_size}
if [[ ! -f $image/.complete ]]; then
  echo "bench: writing a ${layers} x ${layer_size} byte image into $image" >&2
  rm -rf "$image"
  python3 tests/support/make_image.py "$image" --layers "$layers" --layer-size "$layer_size" \
    --incompressible --ref bench >"$work/image.json.tmp"
  mv "$work/image.json.tmp" "$image/.summary.json"
  touch "$image/.complete"
fi
image_bytes=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["blobBytes"])' "$image/.summary.json")
image_digest=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["digest"])' "$image/.summary.json")

# Registry storage on the same disk as the image, removed after each run.
export TMPDIR=$work/tmp
mkdir -p "$TMPDIR"
runs=$work/runs.tsv
: >"$runs"
child=
cleanup() {
  if [[ -n $child ]]; then kill -TERM "$child" 2>/dev/null || true; fi
  registry_stop
  rm -rf "$TMPDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# timed NAME ROUND CMD...: runs CMD against a fresh registry ({HOST} replaced by its host:port),
# records "round tool seconds max_rss_kib", fails if CMD fails or the registry lacks the image.
timed() {
  local tool=$1 round=$2
  shift 2
  registry_start "$TMPDIR" plain
  local args=() arg
  for arg in "$@"; do args+=("${arg//\{HOST\}/$REGISTRY_HOST}"); done
  local timing=$work/time.out log=$work/$tool-$round.log rc=0
  /usr/bin/time -f '%e %M' -o "$timing" "${args[@]}" >"$log" 2>&1 &
  child=$!
  wait "$child" || rc=$?
  child=
  if ((rc != 0)); then
    echo "bench: $tool failed (exit $rc) in round $round:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  local pushed
  pushed=$(python3 - "$REGISTRY_INFO" <<'PY'
import json, os, sys
info = json.load(open(sys.argv[1]))
link = os.path.join(info["storage_dir"], "docker/registry/v2/repositories/bench/_manifests/tags/1/current/link")
print(open(link).read().strip() if os.path.exists(link) else "none")
PY
)
  registry_stop
  if [[ $pushed != "$image_digest" ]]; then
    echo "bench: after $tool, bench:1 is $pushed, expected $image_digest" >&2
    exit 1
  fi
  local seconds rss
  read -r seconds rss < <(tail -n 1 "$timing")
  printf '%s\t%s\t%s\t%s\n' "$round" "$tool" "$seconds" "$rss" >>"$runs"
  printf 'bench: round %s %-9s %6ss  peak RSS %s MiB\n' "$round" "$tool" "$seconds" "$((rss / 1024))" >&2
}

for round in $(seq 1 "$rounds"); do
  timed tagwarden "$round" "$tagwarden" push "oci:$image:bench" "{HOST}/bench:1" "${jobs_args[@]}"
  timed skopeo "$round" "$skopeo" copy --insecure-policy --dest-tls-verify=false \
    "oci:$image:bench" "docker://{HOST}/bench:1"
done

python3 - "$runs" "$results" "$image_bytes" "$layers" "$layer_size" "$tagwarden" "$skopeo" "${BENCH_JOBS:-default}" <<'PY'
import datetime, os, platform, statistics, subprocess, sys

runs_file, results, image_bytes, layers, layer_size, tagwarden, skopeo, jobs = sys.argv[1:]
image_bytes, layers, layer_size = int(image_bytes), int(layers), int(layer_size)
runs = [line.split("\t") for line in open(runs_file).read().splitlines() if line]
by_tool = {}
for round_, tool, seconds, rss in runs:
    by_tool.setdefault(tool, []).append((int(round_), float(seconds), int(rss)))

def version(*cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except Exception as error:  # noqa: BLE001
        return f"unknown ({error})"

def meminfo():
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) // 1024} MiB"
    return "unknown"

def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"

mib = image_bytes / (1024 * 1024)
median = {tool: statistics.median(s for _, s, _ in rows) for tool, rows in by_tool.items()}
median_rss = {tool: statistics.median(r for _, _, r in rows) for tool, rows in by_tool.items()}
peak_rss = {tool: max(r for _, _, r in rows) for tool, rows in by_tool.items()}
lines = [
    "# tagwarden push vs skopeo copy",
    "",
    f"Generated by `bench/bench_push.sh` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}.",
    "",
    "## Setup",
    "",
    f"- Machine: {os.cpu_count()} CPUs ({cpu_model()}), {meminfo()} RAM, {platform.system()} {platform.release()}",
    f"- Image: {layers} incompressible layers of {layer_size} bytes ({mib:.0f} MiB of blobs), OCI layout, "
    "written once by `tests/support/make_image.py --incompressible`, read from the page cache",
    f"- Registry: `docker-registry` ({version('/usr/bin/docker-registry', '--version')}, filesystem storage) "
    "on 127.0.0.1, plain HTTP, a fresh one (empty storage) for every run, so every blob is uploaded; "
    "it shares the machine's CPUs with the client",
    f"- tagwarden: `{os.path.relpath(tagwarden) if not os.path.relpath(tagwarden).startswith('..') else tagwarden} push oci:IMAGE:bench HOST/bench:1` (--jobs: {jobs}); "
    f"{version(tagwarden, '--version')}",
    f"- skopeo: `skopeo copy --insecure-policy --dest-tls-verify=false oci:IMAGE:bench docker://HOST/bench:1`; "
    f"{version(skopeo, '--version')}",
    "- Measured with `/usr/bin/time -f '%e %M'`: wall seconds and peak resident set size of the client process",
    "",
    "## Runs",
    "",
    "| round | tool | wall (s) | throughput (MiB/s) | peak RSS (MiB) |",
    "|---:|---|---:|---:|---:|",
]
for round_, tool, seconds, rss in runs:
    seconds, rss = float(seconds), int(rss)
    lines.append(f"| {round_} | {tool} | {seconds:.2f} | {mib / seconds if seconds else 0:.0f} | {rss / 1024:.1f} |")
lines += ["", "## Medians", "", "| tool | wall (s) | throughput (MiB/s) | peak RSS (MiB), median / max |",
          "|---|---:|---:|---:|"]
for tool in by_tool:
    lines.append(f"| {tool} | {median[tool]:.2f} | {mib / median[tool] if median[tool] else 0:.0f} | "
                 f"{median_rss[tool] / 1024:.1f} / {peak_rss[tool] / 1024:.1f} |")
if "tagwarden" in median and "skopeo" in median and median["skopeo"]:
    ratio = median["tagwarden"] / median["skopeo"]
    lines += ["", f"**Ratio tagwarden / skopeo (median wall time): {ratio:.2f}** "
              f"({'faster' if ratio < 1 else 'slower'} than skopeo).",
              f"**tagwarden peak RSS: {peak_rss['tagwarden'] / 1024:.1f} MiB** "
              f"(skopeo: {peak_rss['skopeo'] / 1024:.1f} MiB)."]
# Keep the other benchmarks' sections (bench_policy.sh writes its own between markers).
kept = ""
try:
    previous = open(results).read()
    if "<!-- policy-bench:start -->" in previous:
        kept = "\n<!-- policy-bench:start -->" + previous.split("<!-- policy-bench:start -->", 1)[1]
except FileNotFoundError:
    pass
open(results, "w").write("\n".join(lines) + "\n" + kept)
print("\n".join(lines))
PY
