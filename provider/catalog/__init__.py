"""The policies sigwarden ships, as package data: one folder per policy (gatekeeper-library layout).

`policies/<name>/` holds `src.rego` and `meta.yaml` (the source), `template.yaml` (generated from them by
`provider.policy.build`), `suite.yaml` and `samples/`. `lib/` is the Rego library every template may import,
`samples/` the sample constraints, `provider.yaml` the Gatekeeper Provider objects and `mutation/` the
digest-pinning Assign. Everything here is read from the installed package, never from a source checkout.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
POLICIES = ROOT / "policies"
LIB = ROOT / "lib"
SAMPLES = ROOT / "samples"
PROVIDER = ROOT / "provider.yaml"
MUTATION = ROOT / "mutation"


def policy_dirs() -> list[Path]:
    """Every shipped policy folder (those with a meta.yaml), in name order."""
    return sorted(p for p in POLICIES.iterdir() if (p / "meta.yaml").is_file())


def template_files() -> list[Path]:
    """The generated ConstraintTemplate of every shipped policy."""
    return [p / "template.yaml" for p in policy_dirs()]


def suite_files() -> list[Path]:
    """The gator-style suite of every shipped policy."""
    return [p / "suite.yaml" for p in policy_dirs() if (p / "suite.yaml").is_file()]


def sample_constraints() -> list[Path]:
    return sorted(SAMPLES.glob("*.yaml"))
