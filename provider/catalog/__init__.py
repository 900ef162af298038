"""The policies sigwarden ships, as package data: one folder per policy (gatekeeper-library layout).

The Rego sources live in the repository's top-level `policies/`: `policies/<name>/` holds `src.rego` and
`meta.yaml` (the source), `template.yaml` (generated from them by `provider.policy.build`), `suite.yaml` and
`samples/`; `policies/lib/` is the Rego library every template may import. The wheel ships that folder as
`provider/catalog/policies/` (pyproject's `package-dir`). Next to this module: `samples/` the sample constraints,
`provider.yaml` the Gatekeeper Provider objects and `mutation/` the digest-pinning Assign. Every lookup of a
policy file goes through `POLICIES` and `LIB` below.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _policies_root() -> Path:
    """Where the policy sources are: inside the package when installed from the wheel, the checkout's top-level
    `policies/` otherwise (a source tree on PYTHONPATH or an editable install). Found from this file, not through
    the import system, so a checkout reads its own policies even when another checkout is installed editable."""
    for candidate in (ROOT / "policies", ROOT.parents[1] / "policies"):
        if (candidate / "lib").is_dir():
            return candidate
    raise RuntimeError(f"no policies/ folder in {ROOT} or {ROOT.parents[1]}: reinstall sigwarden")


POLICIES = _policies_root()
LIB = POLICIES / "lib"
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
