#!/usr/bin/env python3
"""What the guards, the locks and the verification of a guarded ECR push cost (issue 13, "safety that
costs nothing"), on the ECR test bed (tests/support/ecr_testbed.py: moto + SigV4 front + docker-registry).

Starts the bed, fills one repository with BENCH_IMAGES images (default 5,000; tests/support/ecr_seed.py,
timed), then pushes BENCH_ROUNDS times (default 5) per bed mode an image whose one layer changed (a fresh
incompressible BENCH_LAYER_MIB MiB layer, default 50, and its config) under a new tag, with
`--output json`, alternating the push variants (BENCH_VARIANTS, default "default guards-first": the images
read once beside the upload, under the tag locks; or with --guards-first, every guard before the upload
and the images read again under the locks) and the bed modes (BENCH_BED_MODES, default "cached moto"):

- cached: the bed keeps moto's image list between moto's writes (EcrTestbed listing_cache), listed
  once before each push (the previous push's PutImage emptied it), so a DescribeImages page costs what
  the front takes to verify the signature and serve 1000 entries, as on ECR: what the push itself costs;
- moto: the bed as the tests run it, where every page makes moto serialize the whole repository.

For each mode it prints:

- the median wall time of each phase from the report's "timings" (guards, lockWait, upload, manifests,
  verify) and of the whole run (durationSeconds), with min and max;
- the overhead ratio (guards + lockWait + verify) / upload, against the target of 25 %;
- the read of the images under the tag locks, beside the upload (part of "guards" only where it outlasts
  the upload), from tagwarden's own log line;
- the control-plane calls of one push by operation (bed.api_calls) and the data-plane requests by kind;
- where the bed spends the guards' time: a DescribeImages page through the front at maxResults 1000 and
  a GetLifecyclePolicy, timed from Python (median of 5); and once moto's own full DescribeImages.

Environment: TAGWARDEN_BIN (default build/tagwarden), BENCH_IMAGES, BENCH_ROUNDS, BENCH_LAYER_MIB,
BENCH_BED_MODES, BENCH_JSON (also write the numbers to this file as JSON). Needs what the integration tests need
(docker-registry, moto); everything runs on 127.0.0.1 and is stopped at the end.
"""

import collections
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))

import ecr_seed  # noqa: E402
import make_image  # noqa: E402
from ecr_testbed import EcrTestbed  # noqa: E402

PHASES = ("guards", "lockWait", "upload", "manifests", "verify")
REPO = "bench/guarded"
# A policy of the usual shape: untagged images go after two weeks, dev builds beyond the last 500.
POLICY = {"rules": [
    {"rulePriority": 1, "description": "untagged after 14 days",
     "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
     "action": {"type": "expire"}},
    {"rulePriority": 2, "description": "the last 500 dev builds",
     "selection": {"tagStatus": "tagged", "tagPatternList": ["*-dev"], "countType": "imageCountMoreThan",
                   "countNumber": 500},
     "action": {"type": "expire"}},
]}
MODES = {
    "cached": "moto's image list kept between its writes (EcrTestbed listing_cache): a page costs what "
              "serving 1000 entries costs, as on ECR",
    "moto": "the bed as the tests run it: every DescribeImages page lists the whole repository in moto",
}
REREAD_RE = re.compile(r"read (?:again )?under the tag locks: (\d+) image\(s\), (\d+) DescribeImages page\(s\) in (\d+) ms")
VARIANTS = {"default": [], "guards-first": ["--guards-first"]}


def env_int(name, default):
    value = os.environ.get(name)
    return int(value) if value else default


def median_ms(values):
    return statistics.median(values) * 1000.0


def timed(fn, repeat=5):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def summarize(runs):
    med = {p: median_ms([r["timings"][p] for r in runs]) for p in PHASES}
    lo = {p: min(r["timings"][p] for r in runs) * 1000 for p in PHASES}
    hi = {p: max(r["timings"][p] for r in runs) * 1000 for p in PHASES}
    total = median_ms([r["duration"] for r in runs])
    overheads = [(r["timings"]["guards"] + r["timings"]["lockWait"] + r["timings"]["verify"]) / r["timings"]["upload"]
                 for r in runs if r["timings"]["upload"] > 0]
    rereads = [r["reread_ms"] for r in runs if r["reread_ms"] is not None]
    return {"median": med, "min": lo, "max": hi, "total": total,
            "overhead": statistics.median(overheads) if overheads else float("nan"),
            "reread": statistics.median(rereads) if rereads else None,
            "calls": runs[-1]["calls"], "same_calls": all(r["calls"] == runs[-1]["calls"] for r in runs),
            "requests": runs[-1]["requests"]}


def request_kind(path):
    if "/manifests/" in path:
        return "manifests"
    if "/uploads/" in path:
        return "blobs/uploads"
    if "/blobs/" in path:
        return "blobs"
    return path


def main():
    binary = os.environ.get("TAGWARDEN_BIN") or os.path.join(ROOT, os.environ.get("BUILD_DIR", "build"), "tagwarden")
    if not os.access(binary, os.X_OK):
        sys.exit(f"bench_guarded_ecr: no tagwarden binary at {binary}: run ./scripts/build or set TAGWARDEN_BIN")
    images = env_int("BENCH_IMAGES", 5000)
    rounds = env_int("BENCH_ROUNDS", 5)
    layer_mib = env_int("BENCH_LAYER_MIB", 50)
    modes = os.environ.get("BENCH_BED_MODES", "cached moto").split()
    for mode in modes:
        if mode not in MODES:
            sys.exit(f"bench_guarded_ecr: BENCH_BED_MODES takes {' '.join(MODES)}, not {mode!r}")
    work = tempfile.mkdtemp(prefix="tw-bench-guarded-")
    variants = os.environ.get("BENCH_VARIANTS", "default guards-first").split()
    for variant in variants:
        if variant not in VARIANTS:
            sys.exit(f"bench_guarded_ecr: BENCH_VARIANTS takes {' '.join(VARIANTS)}, not {variant!r}")
    runs = {(mode, variant): [] for mode in modes for variant in variants}
    bed_times = {}
    try:
        with EcrTestbed() as bed:
            bed.create_repository(REPO, lifecycle_policy=POLICY)
            seed_layout = os.path.join(work, "seed")
            seed_info = make_image.make_image(seed_layout, layers=1, layer_size=4096, seed="bench-seed")
            started = time.perf_counter()
            ecr_seed.seed_repository(bed, REPO, images, seed_layout, seed_info, tag_format="{n}-dev")
            seeding = time.perf_counter() - started
            print(f"bed: {images} images seeded into {REPO} in {seeding:.1f} s", flush=True)

            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("TAGWARDEN_", "AWS_", "GITHUB_", "CODEBUILD_", "GITLAB_")) and k != "CI"}
            env.update(bed.env())
            env.update({"TAGWARDEN_STATE_DIR": os.path.join(work, "state"),
                        "AWS_CONFIG_FILE": os.path.join(work, "none"),
                        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(work, "none"),
                        "DOCKER_CONFIG": os.path.join(work, "docker")})
            os.makedirs(env["DOCKER_CONFIG"], exist_ok=True)
            push = 0
            for i in range(rounds):
                for mode, variant in runs:  # alternating, so drift of the machine spreads over all
                    bed.listing_cache = mode == "cached"
                    if bed.listing_cache:
                        bed._moto_images(REPO)  # the previous push's PutImage emptied the cache: list once now
                    layout = os.path.join(work, f"image-{push}")
                    make_image.make_image(layout, layers=1, layer_size=layer_mib << 20,
                                          seed=f"bench-{push}-{time.time()}", incompressible=True)
                    calls_before = len(bed.api_calls())
                    mark = bed.mark()
                    proc = subprocess.run([binary, "push", f"oci:{layout}", f"{bed.registry_host}/{REPO}",
                                           "--version", f"9.{push}.0", "--env", "dev", "--plain-http",
                                           "--lock", f"file://{work}/locks", "--output", "json",
                                           *VARIANTS[variant]],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True, env=env, cwd=work, timeout=600)
                    push += 1
                    if proc.returncode != 0:
                        sys.exit(f"bench_guarded_ecr: push {push} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
                    time.sleep(0.3)  # the data plane logs a request just after answering it
                    report = json.loads(proc.stdout)
                    if "timings" not in report:  # a build before issue 13: the whole run only
                        report["timings"] = {p: float("nan") for p in PHASES}
                    reread = REREAD_RE.search(proc.stderr)
                    runs[(mode, variant)].append({
                        "timings": report["timings"],
                        "duration": report["durationSeconds"],
                        "reread_ms": int(reread.group(3)) if reread else None,
                        "calls": collections.Counter(c.operation for c in bed.api_calls()[calls_before:]),
                        "requests": collections.Counter(f"{r.method} {request_kind(r.path)}"
                                                        for r in bed.requests(since=mark)),
                    })
                    shutil.rmtree(layout, ignore_errors=True)
                    t = report["timings"]
                    print(f"round {i + 1}/{rounds}, bed {mode}, {variant}: " +
                          ", ".join(f"{p} {t[p] * 1000:.0f} ms" for p in PHASES) +
                          f", total {report['durationSeconds'] * 1000:.0f} ms", flush=True)

            # Where the bed spends the guards' time, measured from here (botocore through the front, moto raw).
            front = bed.client("ecr")
            for mode in modes:
                bed.listing_cache = mode == "cached"
                bed_times[mode] = {
                    "page": timed(lambda: front.describe_images(repositoryName=REPO, maxResults=1000,
                                                                 filter={"tagStatus": "ANY"})),
                    "policy": timed(lambda: front.get_lifecycle_policy(repositoryName=REPO)),
                }
            moto_all = timed(lambda: bed._moto_json("AmazonEC2ContainerRegistry_V20150921", "ecr", "DescribeImages",
                                                    {"repositoryName": REPO}))
            held = bed.image_count(REPO)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"guarded push of one changed {layer_mib} MiB layer to an ECR-bed repository of {images}-{held} images "
          f"({rounds} rounds per bed mode, alternating; medians; {binary})")
    print(f"moto's own DescribeImages of all {held} images: {moto_all * 1000:.0f} ms (it serializes every image)")
    print(f"seeding {images} images: {seeding:.1f} s")
    results = {}
    for (mode, variant), mode_runs in runs.items():
        r = summarize(mode_runs)
        results[f"{mode}/{variant}"] = r
        print()
        print(f"bed mode '{mode}': {MODES[mode]}; variant '{variant}'"
              f"{' (' + ' '.join(VARIANTS[variant]) + ')' if VARIANTS[variant] else ''}")
        print(f"  one DescribeImages page of 1000 through the front {bed_times[mode]['page'] * 1000:.0f} ms, "
              f"GetLifecyclePolicy {bed_times[mode]['policy'] * 1000:.0f} ms (from Python, median of 5)")
        print(f"  {'phase':<10} {'median ms':>10} {'min':>8} {'max':>8}")
        for p in PHASES:
            print(f"  {p:<10} {r['median'][p]:>10.0f} {r['min'][p]:>8.0f} {r['max'][p]:>8.0f}")
        print(f"  {'total':<10} {r['total']:>10.0f}")
        print(f"  overhead (guards + lockWait + verify) / upload: {r['overhead'] * 100:.0f} % (target < 25 %)")
        if r["reread"] is not None:
            print(f"  the images read under the tag locks (beside the upload), median {r['reread']:.0f} ms")
        print(f"  control-plane calls per push{'' if r['same_calls'] else ' (last push; they varied)'}: " +
              ", ".join(f"{op} {n}" for op, n in sorted(r["calls"].items())))
        print("  data-plane requests per push (last): " + ", ".join(f"{k} {n}" for k, n in sorted(r["requests"].items())))
    if os.environ.get("BENCH_JSON"):
        with open(os.environ["BENCH_JSON"], "w") as f:
            json.dump({"images": images, "rounds": rounds, "layerMiB": layer_mib, "seedingSeconds": round(seeding, 2),
                       "motoDescribeAllMs": round(moto_all * 1000, 1),
                       "modes": {key: {"medianMs": {**{p: round(r["median"][p], 1) for p in PHASES},
                                                     "total": round(r["total"], 1)},
                                        "overheadRatio": round(r["overhead"], 4), "rereadMedianMs": r["reread"],
                                        "callsPerPush": dict(r["calls"]), "requestsPerPush": dict(r["requests"]),
                                        "describeImagesPageMs": round(bed_times[key.split("/")[0]]["page"] * 1000, 1)}
                                 for key, r in results.items()}}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
