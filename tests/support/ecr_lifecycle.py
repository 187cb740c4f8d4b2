"""ECR lifecycle-policy preview for the ECR test bed: moto has no StartLifecyclePolicyPreview /
GetLifecyclePolicyPreview, so the bed answers them with this evaluator.

It follows ../shared/reference/ecr-lifecycle-spec.md §4 (AWS's "Lifecycle policy evaluation
rules") and is checked against its lifecycle-vectors.json:

- all rules are evaluated against all images at once; then applied by ascending rulePriority;
- an image is acted on by at most one rule; an image a higher-priority rule *selected* (not only
  marked) is shielded from every lower-priority rule;
- a lower-priority imageCountMoreThan rule still counts images a higher rule expired;
- tagPatternList / tagPrefixList entries are ANDed, each satisfied by any one tag; ``*`` is the
  only wildcard and a pattern matches the whole tag;
- imageCountMoreThan keeps the newest N by push time; sinceImagePushed / sinceImagePulled expire
  images strictly older than N days (the docs leave the boundary open);
- an image referenced by an index still present is never acted on.

Only the standard storage class is modelled (the bed has no archive); rules selecting
``storageClass: archive`` see no images. Tie-breaking on equal push times: by digest.

    results = evaluate(policy_dict, images, now_epoch)   # images: [{"imageDigest", "imageTags",
                                                          #  "imagePushedAt", "lastRecordedPullTime"?}]
    -> [{"imageDigest", "imageTags", "imagePushedAt", "action": {"type": "EXPIRE"},
         "appliedRulePriority": 1, "storageClass": "STANDARD"}, ...]   (oldest first)
"""

import json
import re

DAY = 86400.0


class PolicyError(ValueError):
    """The policy text is not a lifecycle policy (answered as InvalidParameterException)."""


def parse_policy(text):
    """The rules of a lifecycle policy text, sorted by rulePriority; raises PolicyError."""
    try:
        policy = json.loads(text)
        rules = policy["rules"]
        if not isinstance(rules, list) or not rules:
            raise TypeError("rules")
        parsed = []
        for rule in rules:
            selection = rule["selection"]
            parsed.append({
                "priority": int(rule["rulePriority"]),
                "tag_status": str(selection["tagStatus"]).lower(),
                "patterns": [_pattern_regex(p) for p in selection.get("tagPatternList") or []],
                "prefixes": list(selection.get("tagPrefixList") or []),
                "storage_class": str(selection.get("storageClass", "standard")).lower(),
                "count_type": selection["countType"],
                "count_number": int(selection["countNumber"]),
                "action": str(rule["action"]["type"]).lower(),
            })
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise PolicyError("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
                          "'Lifecycle policy validation failure: Could not map policyString into "
                          f"LifecyclePolicy.' ({error})")
    priorities = [rule["priority"] for rule in parsed]
    if len(set(priorities)) != len(priorities):
        raise PolicyError("Lifecycle policy validation failure: rulePriority values must be unique")
    return sorted(parsed, key=lambda rule: rule["priority"])


def _pattern_regex(pattern):
    return re.compile("^" + ".*".join(re.escape(part) for part in str(pattern).split("*")) + "$")


def _selects(rule, tags):
    status = rule["tag_status"]
    if status == "untagged":
        return not tags
    if status == "any":
        return True
    if not tags:
        return False
    if rule["patterns"]:
        return all(any(regex.match(tag) for tag in tags) for regex in rule["patterns"])
    return all(any(tag.startswith(prefix) for tag in tags) for prefix in rule["prefixes"])


def _newest_first(images):
    return sorted(images, key=lambda image: (-float(image["imagePushedAt"]), image["imageDigest"]))


def evaluate(policy, images, now, referenced=frozenset()):
    """Preview results (one per image acted on), oldest first. ``policy`` is text or a parsed dict.

    ``referenced`` holds digests referenced by an index in the repository: they are never acted on.
    """
    rules = parse_policy(policy if isinstance(policy, str) else json.dumps(policy))
    shielded = set()
    acted = {}
    for rule in rules:
        if rule["storage_class"] != "standard":
            continue
        candidates = [image for image in images if _selects(rule, image.get("imageTags") or [])]
        if rule["count_type"] == "imageCountMoreThan":
            marked = _newest_first(candidates)[rule["count_number"]:]
        elif rule["count_type"] in ("sinceImagePushed", "sinceImagePulled"):
            def reference_time(image):
                if rule["count_type"] == "sinceImagePulled" and image.get("lastRecordedPullTime") is not None:
                    return float(image["lastRecordedPullTime"])
                return float(image["imagePushedAt"])
            marked = [image for image in candidates if now - reference_time(image) > rule["count_number"] * DAY]
        else:
            marked = []
        for image in marked:
            digest = image["imageDigest"]
            if digest in shielded or digest in acted or digest in referenced:
                continue
            acted[digest] = (image, rule)
        shielded.update(image["imageDigest"] for image in candidates)
    results = []
    oldest_first = sorted(acted.values(), key=lambda pair: (float(pair[0]["imagePushedAt"]), pair[0]["imageDigest"]))
    for image, rule in oldest_first:
        action = {"type": "EXPIRE"} if rule["action"] == "expire" else {"type": "TRANSITION",
                                                                      "targetStorageClass": "ARCHIVE"}
        entry = {"imageDigest": image["imageDigest"], "imagePushedAt": image["imagePushedAt"], "action": action,
                 "appliedRulePriority": rule["priority"], "storageClass": "STANDARD"}
        if image.get("imageTags"):
            entry["imageTags"] = list(image["imageTags"])
        results.append(entry)
    return results
