#!/usr/bin/env bash
# tagwarden push docker-archive:- (from a pipe) vs skopeo copy docker-archive:FILE, side by side, one run.
#
# Writes once a 1 GiB image (8 incompressible layers of 128 MiB) as an OCI layout and, with skopeo, as a
# docker-archive (uncompressed layers, as `docker save` writes them) into bench/work/. Then runs
# BENCH_ROUNDS rounds of, each against a fresh registry:
#   cat ARCHIVE | tagwarden push docker-archive:- HOST/bench:1     (spool, gzip the layers, push)
#   skopeo copy docker-archive:ARCHIVE docker://HOST/bench:1       (skopeo compresses with gzip too)
#   tagwarden push oci:LAYOUT:bench HOST/bench:1                    (the oci: baseline for memory)
# Then the same for a compressible archive (BENCH_COMPRESSIBLE=1, the default): two layers, tars of
# /usr/lib/gcc and /usr/lib/llvm-19 (installed by scripts/bootstrap), tools prefixed "compressible-".
# Wall time and peak RSS of the client come from /usr/bin/time (for the pipe: the larger of cat and
# tagwarden, i.e. tagwarden). Writes its section of bench/RESULTS.md between the archive-bench markers.
#
# Environment: BENCH_ROUNDS (3), BENCH_LAYERS (8), BENCH_LAYER_SIZE (134217728 bytes), BENCH_COMPRESS
#              ("gzip zstd": one tagwarden-stdin-<c> run per value and round), BENCH_RESULTS, BUILD_DIR,
#              TAGWARDEN_BIN (use this binary, skip the build).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=../scripts/lib/registry.sh
source scripts/lib/registry.sh

rounds=${BENCH_ROUNDS:-3}
layers=${BENCH_LAYERS:-8}
layer_size=${BENCH_LAYER_SIZE:-134217728}
compressions=${BENCH_COMPRESS:-gzip zstd}
results=${BENCH_RESULTS:-$root/bench/RESULTS.md}

./scripts/bootstrap
if [[ -n ${TAGWARDEN_BIN:-} ]]; then
  tagwarden=$TAGWARDEN_BIN
else
  ./scripts/build >&2
  tagwarden=$root/${BUILD_DIR:-build}/tagwarden
fi
skopeo=$(command -v skopeo)
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
archive=$work/docker-archive-${layers}x${layer_size}.tar
if [[ ! -f $archive.complete ]]; then
  echo "bench: writing the docker-archive $archive with skopeo" >&2
  rm -f "$archive"
  "$skopeo" copy --insecure-policy "oci:$image:bench" "docker-archive:$archive:bench:1" >&2
  touch "$archive.complete"
fi
archive_bytes=$(stat -c %s "$archive")
compressible=$work/compressible.tar
if [[ ${BENCH_COMPRESSIBLE:-1} == 1 && ! -f $compressible.complete ]]; then
  echo "bench: writing the compressible docker-archive $compressible" >&2
  python3 - "$compressible" <<'PY'
import hashlib, io, json, os, sys, tarfile, tempfile
out = sys.argv[1]
with tempfile.TemporaryDirectory(dir=os.path.dirname(out)) as tmp:
    layers = []
    for i, root in enumerate(["/usr/lib/gcc", "/usr/lib/llvm-19"]):
        path = os.path.join(tmp, f"layer{i}.tar")
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
            t.add(root, arcname=root.lstrip("/"), filter=lambda ti: (setattr(ti, "mtime", 0), ti)[1])
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        layers.append((path, f"layer{i}.tar", "sha256:" + h.hexdigest()))
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [d for _, _, d in layers]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["bench:1"], "Layers": [n for _, n, _ in layers]}]).encode()
    with tarfile.open(out, "w") as t:
        for path, name, _ in layers:
            t.add(path, arcname=name)
        for name, data in ((config_name, config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
PY
  touch "$compressible.complete"
fi
compressible_bytes=$( [[ -f $compressible ]] && stat -c %s "$compressible" || echo 0)

export TMPDIR=$work/tmp
mkdir -p "$TMPDIR"
runs=$work/archive-runs.tsv
: >"$runs"
child=
cleanup() {
  if [[ -n $child ]]; then kill -TERM "$child" 2>/dev/null || true; fi
  registry_stop
  rm -rf "$TMPDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# timed TOOL ROUND CMD...: CMD against a fresh registry ({HOST} replaced), records
# "round tool seconds max_rss_kib digest"; fails when CMD fails or bench:1 is missing afterwards.
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
  if [[ $pushed == none ]]; then
    echo "bench: after $tool, bench:1 is missing" >&2
    exit 1
  fi
  if compgen -G "$TMPDIR/tagwarden-spool-*" >/dev/null; then
    echo "bench: $tool left a spool directory in $TMPDIR" >&2
    exit 1
  fi
  local seconds rss
  read -r seconds rss < <(tail -n 1 "$timing")
  printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$tool" "$seconds" "$rss" "$pushed" >>"$runs"
  printf 'bench: round %s %-22s %6ss  peak RSS %s MiB  %s\n' "$round" "$tool" "$seconds" "$((rss / 1024))" "$pushed" >&2
}

for round in $(seq 1 "$rounds"); do
  for compress in $compressions; do
    timed "tagwarden-stdin-$compress" "$round" bash -c 'cat "$0" | exec "$@"' "$archive" \
      "$tagwarden" push docker-archive:- "{HOST}/bench:1" --compress "$compress"
  done
  timed "skopeo" "$round" "$skopeo" copy --insecure-policy --dest-tls-verify=false \
    "docker-archive:$archive" "docker://{HOST}/bench:1"
  timed "tagwarden-oci" "$round" "$tagwarden" push "oci:$image:bench" "{HOST}/bench:1"
  if [[ ${BENCH_COMPRESSIBLE:-1} == 1 ]]; then
    for compress in $compressions; do
      timed "compressible-tagwarden-stdin-$compress" "$round" bash -c 'cat "$0" | exec "$@"' "$compressible" \
        "$tagwarden" push docker-archive:- "{HOST}/bench:1" --compress "$compress"
    done
    timed "compressible-skopeo" "$round" "$skopeo" copy --insecure-policy --dest-tls-verify=false \
      "docker-archive:$compressible" "docker://{HOST}/bench:1"
  fi
done

python3 - "$runs" "$results" "$archive_bytes" "$layers" "$layer_size" "$compressible_bytes" <<'PY'
import datetime, os, statistics, sys

runs_file, results, archive_bytes, layers, layer_size, compressible_bytes = sys.argv[1:]
mib = int(archive_bytes) / (1024 * 1024)
compressible_mib = int(compressible_bytes) / (1024 * 1024)
runs = [line.split("\t") for line in open(runs_file).read().splitlines() if line]
by_tool = {}
for round_, tool, seconds, rss, digest in runs:
    by_tool.setdefault(tool, []).append((float(seconds), int(rss), digest))
stdin_digests = {tool: {d for _, _, d in rows} for tool, rows in by_tool.items() if "tagwarden-stdin" in tool}
lines = [
    "<!-- archive-bench:start -->",
    "## docker-archive from a pipe vs skopeo",
    "",
    f"`bench/bench_archive.sh` ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}, {os.cpu_count()} CPUs shared "
    f"with other work): a {mib:.0f} MiB docker-archive ({layers} incompressible uncompressed layers of {int(layer_size)} bytes, "
    "written by `skopeo copy oci:… docker-archive:…`), a fresh registry per run, every blob uploaded.",
    "",
    "- `tagwarden-stdin-<c>`: `cat ARCHIVE | tagwarden push docker-archive:- HOST/bench:1 --compress <c>` "
    "(spools the archive to TMPDIR, compresses the layers on --jobs threads, pushes)",
    "- `skopeo`: `skopeo copy --insecure-policy --dest-tls-verify=false docker-archive:ARCHIVE docker://HOST/bench:1` "
    "(reads the file, compresses with gzip while uploading)",
    "- `tagwarden-oci`: `tagwarden push oci:LAYOUT:bench HOST/bench:1`, the same image already compressed in an OCI "
    "layout: the memory baseline",
    f"- `compressible-…`: the same commands on a {compressible_mib:.0f} MiB docker-archive of two compressible layers "
    "(tars of /usr/lib/gcc and /usr/lib/llvm-19: executables and libraries)",
    "",
    "| tool | runs | median wall (s) | median throughput (MiB/s) | peak RSS (MiB), median / max |",
    "|---|---:|---:|---:|---:|",
]
for tool, rows in by_tool.items():
    wall = statistics.median(s for s, _, _ in rows)
    size = compressible_mib if tool.startswith("compressible-") else mib
    lines.append(f"| {tool} | {len(rows)} | {wall:.2f} | {size / wall if wall else 0:.0f} | "
                 f"{statistics.median(r for _, r, _ in rows) / 1024:.1f} / {max(r for _, r, _ in rows) / 1024:.1f} |")
lines.append("")
for tool, digests in stdin_digests.items():
    lines.append(f"- `{tool}`: {len(digests)} distinct manifest digest{'' if len(digests) == 1 else 's'} over its runs "
                 f"({', '.join(sorted(digests))})")
lines.append("<!-- archive-bench:end -->")
section = "\n".join(lines)
try:
    previous = open(results).read()
except FileNotFoundError:
    previous = ""
if "<!-- archive-bench:start -->" in previous:
    head, rest = previous.split("<!-- archive-bench:start -->", 1)
    tail = rest.split("<!-- archive-bench:end -->", 1)[1] if "<!-- archive-bench:end -->" in rest else ""
    text = head + section + tail
else:
    text = previous.rstrip("\n") + "\n\n" + section + "\n"
open(results, "w").write(text)
print(section)
PY
