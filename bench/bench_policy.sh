#!/usr/bin/env bash
# Lifecycle policy evaluation: 20,000 images x 50 rules (bench/policy_bench.cpp), min and median of 15 runs.
# Writes its section of bench/RESULTS.md (between the policy markers), leaving the push section alone.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${BUILD_DIR:-build}
./scripts/build >&2
cmake --build "$build" --target tagwarden_policy_bench -j2 >&2
line=$("$build/tagwarden_policy_bench" "${BENCH_IMAGES:-20000}" "${BENCH_RULES:-50}" "${BENCH_RUNS:-15}")
echo "bench: $line" >&2
results=${BENCH_RESULTS:-$root/bench/RESULTS.md}
python3 - "$results" "$line" <<'PY'
import json, os, platform, subprocess, sys, datetime
path, line = sys.argv[1], sys.argv[2]
r = json.loads(line)
cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
section = "\n".join([
    "<!-- policy-bench:start -->",
    "## Lifecycle policy evaluation",
    "",
    f"`bench/bench_policy.sh` ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu} cores): "
    f"`policy::evaluate` over {r['images']:,} images and {r['rules']} rules "
    f"(prefix, pattern, count and age rules across 5 environments; {r['expired']:,} images expired), {r['runs']} runs.",
    "",
    "| min | median | target |",
    "|---|---|---|",
    f"| {r['min_ms']:.1f} ms | {r['median_ms']:.1f} ms | well under 100 ms |",
    "<!-- policy-bench:end -->",
])
text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
if "<!-- policy-bench:start -->" in text:
    head, rest = text.split("<!-- policy-bench:start -->", 1)
    tail = rest.split("<!-- policy-bench:end -->", 1)[1]
    text = head + section + tail
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
