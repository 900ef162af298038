"""K8sSignedImages on an index with more platform manifests than the provider checks (facts.platformLimit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provider.facts import MAX_PLATFORMS
from provider.policy.external import gatekeeper_shape
from provider.policy.gatekeeper import PolicySet
from provider.policy.suite import admit
from tests.helpers import write_yaml

TEMPLATES = Path(__file__).resolve().parents[1] / "constraints" / "templates"
IMAGE = "registry.example/team/app:v1"


def facts(omitted: int, arm64: bool = False) -> dict[str, Any]:
    architectures = [f"a{i}" for i in range(MAX_PLATFORMS - 1)] + ["arm64" if arm64 else "amd64"]
    platforms = [{"digest": "sha256:" + f"{i:064x}", "os": "linux", "architecture": arch, "variant": "",
                  "attestationManifest": False, "verified": True, "authorities": ["release"], "reason": ""}
                 for i, arch in enumerate(architectures)]
    data = {"reference": IMAGE, "digest": "sha256:" + "a" * 64, "verified": True, "reason": "",
            "authorities": ["release"], "platforms": platforms,
            "signatures": [{"format": "cosign", "artifact": "sha256:" + "b" * 64, "authority": "release",
                            "verified": True, "reason": ""}]}
    if omitted:
        data["platformLimit"] = {"maxPlatforms": MAX_PLATFORMS, "found": MAX_PLATFORMS + omitted,
                                 "omitted": omitted, "attestationManifestsOmitted": 0}
    return data


def messages(tmp_path: Path, answer: dict[str, Any], parameters: dict[str, Any]) -> list[str]:
    constraint = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sSignedImages",
                  "metadata": {"name": "signed"}, "spec": {"parameters": parameters}}
    policies = PolicySet.from_paths([TEMPLATES, write_yaml(tmp_path / "c.yaml", constraint)],
                                    lambda request: gatekeeper_shape([{"key": k, "value": answer}
                                                                      for k in request["keys"]]))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": IMAGE}]}}
    return [v.message for v in admit(policies, pod).denied]


def test_every_platform_cannot_be_met_when_some_were_not_checked(tmp_path: Path) -> None:
    assert messages(tmp_path, facts(0), {"platformSignatures": "every"}) == []
    assert messages(tmp_path, facts(3), {"platformSignatures": "every"}) == [
        f"image {IMAGE} is not attested: 3 platform manifest(s) of the index not checked: over the provider's "
        f"limit of {MAX_PLATFORMS} per index"]
    # The index's own signature is enough by default: platforms beyond the limit do not matter there.
    assert messages(tmp_path, facts(3), {}) == []


@pytest.mark.parametrize(("omitted", "arm64", "denied"), [
    (0, False, False),  # the index has no arm64 manifest: not required
    (0, True, False),   # listed and verified
    (3, True, False),   # listed among those checked
    (3, False, True),   # perhaps among the three never checked: fail closed
])
def test_a_listed_platform_must_be_among_those_checked(tmp_path: Path, omitted: int, arm64: bool,
                                                       denied: bool) -> None:
    found = messages(tmp_path, facts(omitted, arm64), {"platforms": ["linux/arm64"]})
    expected = [f"image {IMAGE} is not attested: platform linux/arm64 is not among the {MAX_PLATFORMS} platform "
                f"manifests checked ({omitted} more not checked)"] if denied else []
    assert found == expected


def content_messages(tmp_path: Path, answer: dict[str, Any], parameters: dict[str, Any]) -> list[str]:
    constraint = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sImageContent",
                  "metadata": {"name": "content"}, "spec": {"parameters": parameters}}
    empty = {"vulnerabilityReports": [], "sboms": [], "vex": []}
    answer = {**answer, "content": empty,
              "platforms": [{**p, "content": empty, "platform": f"linux/{p['architecture']}"}
                            for p in answer["platforms"]]}
    policies = PolicySet.from_paths([TEMPLATES, write_yaml(tmp_path / "c.yaml", constraint)],
                                    lambda request: gatekeeper_shape([{"key": k, "value": answer}
                                                                      for k in request["keys"]]))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": IMAGE}]}}
    return [v.message for v in admit(policies, pod).denied]


@pytest.mark.parametrize(("omitted", "parameters", "denied"), [
    (0, {"maximumSeverity": "CRITICAL"}, ""),
    (3, {"maximumSeverity": "CRITICAL"}, "content of 3 platform manifest(s) could not be checked"),
    (3, {"maximumSeverity": "CRITICAL", "platforms": ["linux/a0"]}, ""),
    (3, {"maximumSeverity": "CRITICAL", "platforms": ["linux/arm64"]}, "content of platform linux/arm64 could not"),
])
def test_content_of_platforms_over_the_limit_is_unknown(tmp_path: Path, omitted: int, parameters: dict[str, Any],
                                                        denied: str) -> None:
    """K8sImageContent evaluates every platform by default: one the provider never looked at cannot pass."""
    found = content_messages(tmp_path, facts(omitted), parameters)
    assert (found == []) is (not denied), found
    assert all(denied in m for m in found), found
