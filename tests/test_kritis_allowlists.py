"""kritis allowlists as kritis matched them: the vendored upstream table, and imported policies through the real
templates on kritis's own spellings of an image (as the pod spec writes it, never normalised).

Upstream: github.com/grafeas/kritis pkg/kritis/util/allowlist.go (imageNamePatternMatch) for
GenericAttestationPolicy.admissionAllowlistPatterns, pkg/kritis/crd/securitypolicy/securitypolicy.go
(imageInAllowlist) for ImageSecurityPolicy.imageAllowlist, pkg/kritis/review/review.go (generateGapAllowlist) for
the union over a namespace's policies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import regorus

from provider import catalog
from provider.importers.kritis import Source, convert
from provider.policy.external import gatekeeper_shape
from provider.policy.gatekeeper import PolicySet
from provider.policy.suite import admit
from tests.helpers import VECTORS, write_yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "constraints" / "templates"
TABLE = json.loads((VECTORS / "kritis" / "allowlist_test.json").read_text())
REGO = regorus.Engine()
REGO.set_rego_v0(True)
REGO.add_policy("images.rego", (catalog.LIB / "images.rego").read_text())


def name_exempt(image: str, patterns: list[str]) -> bool:
    query = f"x := data.lib.sigwarden.images.name_exempt({json.dumps(image)}, {json.dumps(patterns)})"
    return bool(REGO.eval_query(query).get("result") or [])


GAP_TABLE = TABLE["Test_imageInGapAllowlist"]


# kritis pkg/kritis/util/allowlist_test.go, Test_imageInGapAllowlist: every row, as vendored.
@pytest.mark.parametrize("row", GAP_TABLE["tests"], ids=[row["name"] for row in GAP_TABLE["tests"]])
def test_upstream_gap_allowlist_table(row: dict[str, Any]) -> None:
    assert name_exempt(row["image"], GAP_TABLE["allowlist"]) is row["expected"]


# The same rows through what `import kritis` writes and the shipped K8sSignedImages template.
@pytest.mark.parametrize("row", GAP_TABLE["tests"], ids=[row["name"] for row in GAP_TABLE["tests"]])
def test_upstream_gap_allowlist_table_through_the_import(tmp_path: Path, row: dict[str, Any]) -> None:
    policies, asked = imported(tmp_path, [gap("gap", "team", *GAP_TABLE["allowlist"])])
    assert admit(policies, pod("team", row["image"])).allowed is row["expected"]
    assert (row["image"] not in asked) is row["expected"]


UNVERIFIED = {"digest": "sha256:" + "a" * 64, "verified": False, "reason": "no signatures found",
              "authorities": [], "signatures": []}


def pod(namespace: str, *images: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": namespace},
            "spec": {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]}}


def imported(tmp_path: Path, docs: list[dict[str, Any]]) -> tuple[PolicySet, list[str]]:
    """The kubernetes objects `import kritis` writes, with a provider that finds every image unsigned; the second
    value collects the images the templates sent to the provider (those not allowlisted)."""
    conversion = convert([Source(doc, tmp_path / "in.yaml") for doc in docs])
    asked: list[str] = []

    def provider(request: dict[str, Any]) -> dict[str, Any]:
        asked.extend(request["keys"])
        return gatekeeper_shape([{"key": k, "value": {**UNVERIFIED, "reference": k}} for k in request["keys"]])

    constraints = [write_yaml(tmp_path / f"c{i}.yaml", c) for i, c in enumerate(conversion.kubernetes)]
    return PolicySet.from_paths([TEMPLATES, *constraints], provider), asked


def gap(name: str, namespace: str, *patterns: str) -> dict[str, Any]:
    return {"apiVersion": "kritis.grafeas.io/v1beta1", "kind": "GenericAttestationPolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"attestationAuthorityNames": ["a"],
                     "admissionAllowlistPatterns": [{"namePattern": p} for p in patterns]}}


# kritis pkg/kritis/util/allowlist_test.go, Test_SplitGapAllowedImages: the same split through an imported policy.
def test_upstream_split_table_through_the_imported_constraint(tmp_path: Path) -> None:
    split = TABLE["Test_SplitGapAllowedImages"]
    policies, asked = imported(tmp_path, [gap("gap", "team", *split["allowlist"])])
    denied = admit(policies, pod("team", *split["images"])).denied
    assert sorted(asked) == sorted(split["notAllowlisted"])
    assert sorted(v.details["image"] for v in denied) == sorted(split["notAllowlisted"])


# Differential rows: (kritis rule followed, patterns, image as the pod spells it, kritis allowlists it).
GAP_ROWS = [
    # allowlist.go imageNamePatternMatch: a trailing "*" stops at the next "/".
    ("imageNamePatternMatch prefix", ["gcr.io/base/*"], "gcr.io/base/app:1", True),
    ("imageNamePatternMatch no further /", ["gcr.io/base/*"], "gcr.io/base/ci/evil:1", False),
    ("imageNamePatternMatch prefix in a name", ["gcr.io/base/app*"], "gcr.io/base/app-evil:1", True),
    ("imageNamePatternMatch prefix in a name, no /", ["gcr.io/base/app*"], "gcr.io/base/app/evil:1", False),
    # allowlist.go imageNamePatternMatch: no "*" at the end means string equality, tag and digest included.
    ("imageNamePatternMatch exact", ["gcr.io/base/app"], "gcr.io/base/app", True),
    ("imageNamePatternMatch exact, tag differs", ["gcr.io/base/app"], "gcr.io/base/app:1", False),
    ("imageNamePatternMatch exact, digest differs", ["gcr.io/base/app"],
     "gcr.io/base/app@sha256:" + "b" * 64, False),
    # allowlist.go imageNamePatternMatch: a mid-pattern "*" is a literal character.
    ("imageNamePatternMatch mid *", ["gcr.io/*/app"], "gcr.io/team/app", False),
    ("imageNamePatternMatch mid * with trailing *", ["gcr.io/*/app*"], "gcr.io/team/app:1", False),
    # allowlist.go imageNamePatternMatch: raw strings, no normalisation of either side.
    ("imageNamePatternMatch raw host case", ["gcr.io/base/*"], "GCR.io/base/app:1", False),
    ("imageNamePatternMatch raw default port", ["gcr.io/base/*"], "gcr.io:443/base/app:1", False),
    ("imageNamePatternMatch raw Docker Hub short name", ["docker.io/library/nginx*"], "nginx:1.25", False),
    ("imageNamePatternMatch raw Docker Hub short name, pattern short", ["nginx*"], "nginx:1.25", True),
    ("imageNamePatternMatch raw Docker Hub short name, long image", ["nginx*"], "docker.io/library/nginx:1.25", False),
]


@pytest.mark.parametrize(("rule", "patterns", "image", "allowlisted"), GAP_ROWS, ids=[r[0] for r in GAP_ROWS])
def test_imported_gap_allowlist_matches_as_kritis(tmp_path: Path, rule: str, patterns: list[str], image: str,
                                                  allowlisted: bool) -> None:
    policies, asked = imported(tmp_path, [gap("gap", "team", *patterns)])
    assert admit(policies, pod("team", image)).allowed is allowlisted
    assert (image not in asked) is allowlisted


def test_a_namespace_allowlist_is_the_union_of_its_policies(tmp_path: Path) -> None:
    """review.go generateGapAllowlist: a pattern of any policy of the namespace exempts from all of them."""
    policies, _ = imported(tmp_path, [gap("one", "team", "gcr.io/tools/*"), gap("two", "team"),
                                      gap("three", "other")])
    assert admit(policies, pod("team", "gcr.io/tools/debug:1")).allowed
    assert not admit(policies, pod("other", "gcr.io/tools/debug:1")).allowed


def isp(*allowlist: str) -> dict[str, Any]:
    return {"apiVersion": "kritis.grafeas.io/v1beta1", "kind": "ImageSecurityPolicy",
            "metadata": {"name": "isp", "namespace": "team"}, "spec": {"imageAllowlist": list(allowlist)}}


# securitypolicy.go imageInAllowlist: string equality with the image.
ISP_ROWS = [
    ("imageInAllowlist exact", ["gcr.io/my/image:1"], "gcr.io/my/image:1", True),
    ("imageInAllowlist other tag", ["gcr.io/my/image"], "gcr.io/my/image:1", False),
    ("imageInAllowlist digest", ["gcr.io/my/image"], "gcr.io/my/image@sha256:" + "c" * 64, False),
    ("imageInAllowlist below", ["gcr.io/my/image"], "gcr.io/my/image/evil", False),
    ("imageInAllowlist no glob", ["gcr.io/my/*"], "gcr.io/my/image", False),
    ("imageInAllowlist raw", ["gcr.io/my/image:1"], "GCR.IO/my/image:1", False),
]


@pytest.mark.parametrize(("rule", "allowlist", "image", "allowlisted"), ISP_ROWS, ids=[r[0] for r in ISP_ROWS])
def test_imported_isp_allowlist_is_exact(tmp_path: Path, rule: str, allowlist: list[str], image: str,
                                         allowlisted: bool) -> None:
    policies, asked = imported(tmp_path, [isp(*allowlist)])
    assert admit(policies, pod("team", image)).allowed is allowlisted
    assert (image not in asked) is allowlisted


def test_isp_entry_with_a_trailing_star_is_reported_and_dropped(tmp_path: Path) -> None:
    conversion = convert([Source(isp("gcr.io/my/*", "gcr.io/my/app"), tmp_path / "in.yaml")])
    (constraint,) = conversion.kubernetes
    assert constraint["spec"]["parameters"]["exemptImageNamePatterns"] == ["gcr.io/my/app"]
    assert any(f.attention and f.source.endswith("spec.imageAllowlist[0]") for f in conversion.findings)
