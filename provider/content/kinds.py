"""The content artifacts sigwarden understands, and the authority purpose each one needs.

Attestations are matched on the exact in-toto `predicateType`; referrers on the exact OCI `artifactType`.
"""

from __future__ import annotations

VULN_PREDICATE = "https://cosign.sigstore.dev/attestation/vuln/v1"
CYCLONEDX_PREDICATE = "https://cyclonedx.org/bom"
SPDX_PREDICATE = "https://spdx.dev/Document"
OPENVEX_PREDICATES = ("https://openvex.dev/ns", "https://openvex.dev/ns/v0.2.0")

SARIF_ARTIFACT = "application/sarif+json"
CYCLONEDX_ARTIFACT = "application/vnd.cyclonedx+json"
SPDX_ARTIFACT = "application/spdx+json"
OPENVEX_ARTIFACT = "application/openvex+json"

VULNERABILITY_REPORT = "vulnerability-report"
SBOM = "sbom"
VEX = "vex"

PREDICATE_PURPOSES = {VULN_PREDICATE: VULNERABILITY_REPORT, CYCLONEDX_PREDICATE: SBOM, SPDX_PREDICATE: SBOM,
                      **{p: VEX for p in OPENVEX_PREDICATES}}
ARTIFACT_PURPOSES = {SARIF_ARTIFACT: VULNERABILITY_REPORT, CYCLONEDX_ARTIFACT: SBOM, SPDX_ARTIFACT: SBOM,
                     OPENVEX_ARTIFACT: VEX}


def purpose_of_predicate(predicate_type: str) -> str:
    """The purpose a content predicate type (or referrer artifact type) needs ("" when it is not content)."""
    return PREDICATE_PURPOSES.get(predicate_type) or ARTIFACT_PURPOSES.get(predicate_type, "")
