"""Every Gatekeeper object the project ships validates against the real CRD schemas."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.crds import validate_object

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "constraints").rglob("*.yaml"))


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_objects_fit_the_crds(path: Path) -> None:
    for obj in documents(path):
        validate_object(obj)


def test_the_validator_rejects_a_typo() -> None:
    (provider,) = [d for d in documents(ROOT / "constraints/provider.yaml") if d["metadata"]["name"] == "sigwarden"]
    provider["spec"]["timeOut"] = 3
    with pytest.raises(jsonschema.ValidationError, match="timeOut"):
        validate_object(provider)


def test_mutation_pins_all_three_container_lists_through_the_mutation_provider() -> None:
    assigns = documents(ROOT / "constraints/mutation/pin-image-digests.yaml")
    assert {a["spec"]["location"] for a in assigns} == {
        "spec.containers[name:*].image", "spec.initContainers[name:*].image",
        "spec.ephemeralContainers[name:*].image"}
    for assign in assigns:
        external = assign["spec"]["parameters"]["assign"]["externalData"]
        assert external == {"provider": "sigwarden-mutation", "dataSource": "ValueAtLocation",
                            "failurePolicy": "Fail"}
    providers = {d["metadata"]["name"]: d["spec"] for d in documents(ROOT / "constraints/provider.yaml")}
    assert providers["sigwarden"]["url"].endswith("/verify")
    assert providers["sigwarden-mutation"]["url"].endswith("/mutate")
