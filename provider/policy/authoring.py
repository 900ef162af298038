"""`sigwarden policy init NAME`: a policy folder that passes `sigwarden policy test NAME/` as written.

The folder has the shipped policies' layout: `src.rego` and `meta.yaml` (the source), `template.yaml` (generated
from them, with the `lib` helpers inlined), a sample constraint and a gator-style suite whose cases are the
built-in fixture images (provider.devkit.fixtures): one signed by each kind of authority, unsigned, tampered,
unreachable, and one with signed content reports. Editing `src.rego` and re-running the suite is the loop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provider.devkit import fixtures
from provider.devkit.kube import deployment
from provider.policy.build import render_policy
from provider.policy.gatekeeper import PolicyError

NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
# The authorities the sample constraint accepts: one of each kind the fixture world has.
SAMPLE_AUTHORITIES = ("release", "keyless-ci", "notation-release", "gpg-release")


@dataclass(frozen=True)
class Case:
    name: str
    image: str
    violations: str  # gator's yes / no


CASES = (
    Case("cosign-key-signed", fixtures.RELEASE_ONLY, "no"),
    Case("keyless-signed", fixtures.KEYLESS_SIGNED, "no"),
    Case("notation-signed", fixtures.NOTATION_SIGNED, "no"),
    Case("gpg-signed", fixtures.GPG_SIGNED, "no"),
    Case("signed-with-content-reports", fixtures.CONTENT_CLEAN, "no"),
    Case("unsigned", fixtures.UNSIGNED, "yes"),
    Case("tampered", fixtures.TAMPERED, "yes"),
    Case("registry-unreachable", fixtures.UNREACHABLE, "yes"),
    Case("exempt", fixtures.DEBUG_TOOL, "no"),
)

SRC = """package {package}

import data.lib.sigwarden.answers
import data.lib.sigwarden.images
import data.lib.sigwarden.vouching

# The images this review decides (containers, initContainers, ephemeralContainers, image volumes; on an UPDATE
# only the images it adds), less the constraint's exemptImages.
checked := images.decided_images_except(input.review, object.get(input.parameters, "exemptImages", []), [])

# One key per image, whatever its spelling.
sent := answers.keys(checked)

# No answer at all must deny too (OPA needs a literal default).
default response := {{"responses": [], "errors": [], "status_code": 0, "system_error": "no answer from external_data"}}

response := external_data({{"provider": "sigwarden", "keys": sent}}) {{
  count(sent) > 0
}}

# Fail closed: the provider could not answer ...
violation[{{"msg": msg}}] {{
  answers.system_error(response) != ""
  image := sent[_]
  msg := sprintf("image %v: provider error: %v", [image, answers.system_error(response)])
}}

# ... could not check an image ...
violation[{{"msg": msg}}] {{
  entry := object.get(response, "errors", [])[_]
  msg := sprintf("image %v could not be verified: %v", [entry[0], entry[1]])
}}

# ... or left one out.
violation[{{"msg": msg}}] {{
  image := answers.unanswered(response, sent)[_]
  msg := sprintf("image %v: the provider's answer left it out", [image])
}}

# Your rule. Here: one of the constraint's authorities vouches for the image. The facts (docs/writing-policies.md)
# also carry the digest, each signature and its signer, and the content reports.
violation[{{"msg": msg}}] {{
  entry := object.get(response, "responses", [])[_]
  facts := entry[1]
  wanted := {{a | a := input.parameters.authorities[_]}}
  count(wanted & vouching.authorities(facts, false)) == 0
  reason := object.get(facts, "reason", "")
  msg := sprintf("image %v is not signed by any of %v: %v", [entry[0], sort([a | wanted[a]]), reason])
}}
"""


def kind_for(name: str) -> str:
    """`signed-by-ci` -> `SignedByCi`: Gatekeeper names the template `signedbyci`, the lowercased kind."""
    return "".join(part.capitalize() for part in name.split("-"))


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=120)


def init_policy(directory: Path) -> list[Path]:
    """Write the policy folder; refuses a name Gatekeeper would refuse, or a folder that is not empty."""
    name = directory.name
    if not NAME.fullmatch(name):
        raise PolicyError(f"{directory}: a policy name is lowercase letters, digits and single dashes, starting "
                          "with a letter (it becomes the template's kind and name)")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise PolicyError(f"{directory}: exists and is not an empty directory")
    kind = kind_for(name)
    files: dict[str, str] = {
        "meta.yaml": _dump({"kind": kind, "title": name.replace("-", " ").capitalize(),
                            "description": "Every image must be signed by one of the constraint's authorities.",
                            "parameters": {
                                "authorities": {"type": "array", "items": {"type": "string"},
                                                "description": "sigwarden authorities that may vouch for an image"},
                                "exemptImages": {"type": "array", "items": {"type": "string"},
                                                 "description": "images not checked; a trailing * is a prefix"}}}),
        "src.rego": SRC.format(package=kind.lower()),
        "samples/constraint.yaml": _dump({
            "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind, "metadata": {"name": f"{name}-sample"},
            "spec": {"enforcementAction": "deny",
                     "match": {"kinds": [{"apiGroups": ["", "apps", "batch"],
                                          "kinds": ["Pod", "Deployment", "StatefulSet", "DaemonSet", "Job",
                                                    "CronJob"]}]},
                     "parameters": {"authorities": list(SAMPLE_AUTHORITIES),
                                    "exemptImages": [fixtures.DEBUG_TOOL.rsplit(":", 1)[0]]}}}),
    }
    for case in CASES:
        files[f"samples/{case.name}.yaml"] = _dump(deployment(case.name, case.image))
    files["suite.yaml"] = _dump({
        "kind": "Suite", "apiVersion": "test.gatekeeper.sh/v1alpha1", "metadata": {"name": name},
        "tests": [{"name": f"{name}-sample", "template": "template.yaml", "constraint": "samples/constraint.yaml",
                   "cases": [{"name": case.name, "object": f"samples/{case.name}.yaml",
                              "assertions": [{"violations": case.violations}]} for case in CASES]}]})
    written = []
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    template = directory / "template.yaml"
    template.write_bytes(render_policy(directory))
    return [*written, template]
