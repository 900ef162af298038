"""exemptImages in Python (the mutation's `mutation.exemptImages`) decide as the Rego library does."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from provider.config import load_config
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from provider.exemptions import exempt
from provider.reference import parse_reference
from tests.test_rego_library import DIGEST, OTHER, holds

PATTERNS = ["registry.example/team/app:v1", f"registry.example/team/db@{DIGEST}", "registry.example/tools/*",
            "busybox", "*.example/literal"]


@pytest.mark.parametrize("image", [
    "registry.example/team/app:v1", "Registry.Example:443/team/app:v1", f"registry.example/team/app:v1@{OTHER}",
    "registry.example/team/app:v2", f"registry.example/team/db@{DIGEST}", f"registry.example/team/db:v1@{DIGEST}",
    f"registry.example/team/db@{OTHER}", "registry.example/tools/debug:v1", f"registry.example/tools/x@{OTHER}",
    "busybox", "docker.io/library/busybox:1.36", f"busybox:1@{OTHER}", "busybox.evil.example/busybox",
    "registry.example/toolsmith/x:v1",
])
def test_python_and_rego_exempt_the_same_images(image: str) -> None:
    assert exempt(parse_reference(image), PATTERNS) is holds("images.exempt", image, PATTERNS)


def test_mutation_answers_exempt_images_unchanged_without_asking_a_registry(tmp_path: Path) -> None:
    layouts = tmp_path / "layouts"
    LayoutWriter(layouts / "airgap.example", "team/app").add_image("v1", b"app")
    config = {"stores": [{"type": "oci-layout", "path": str(layouts), "match": ["airgap.example/*"]},
                         {"type": "registry", "match": ["127.0.0.1:9/*"], "insecure": ["127.0.0.1:9"]}],
              "mutation": {"exemptImages": ["127.0.0.1:9/private/*", "airgap.example/team/app:v1"]}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    engine = Engine(load_config(path))
    keys = ["127.0.0.1:9/private/app:v1", "127.0.0.1:9/public/app:v1", "airgap.example/team/app:v1"]
    items = {item.key: item.to_json() for item in engine.resolve(keys, "t", deadline=time.monotonic() + 20)}
    engine.shutdown()
    # Exempt: never resolved, so an unreachable private registry does not fail admission at mutation.
    assert items["127.0.0.1:9/private/app:v1"]["value"] == "127.0.0.1:9/private/app:v1"
    assert items["airgap.example/team/app:v1"]["value"] == "airgap.example/team/app:v1"
    assert items["127.0.0.1:9/public/app:v1"]["error"].startswith("REGISTRY_UNAVAILABLE")
