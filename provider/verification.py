"""The facts of one resolved image: what is attached to it, what the verifiers say, its content and platforms.

Given a manifest already resolved through its store, find the authorities whose scopes cover its repository,
discover the artifacts attached to it, let each verifier check the ones it understands, summarise the signed
content referrers and attestations, and, for an index, check each platform manifest the same way. The result is
the facts dict of provider/schemas; caching it, sharing it and answering with it is the engine's business
(provider.engine), which calls `Verification.facts` once per digest it does not know yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from provider.config import Authority, Config
from provider.content.referrers import check_referrer
from provider.content.summary import content_facts
from provider.errors import ItemError
from provider.facts import PlatformCheck, Skip, build_facts, checked_platforms, platform_check
from provider.metrics import Metrics
from provider.stores.base import ResolvedImage, SignatureArtifact, Store
from provider.stores.selection import Selection, content_referrers, select
from provider.verifiers.base import AttestationResult, SignatureResult, Verifier

# Platform manifests of one index checked at once.
PLATFORM_CONCURRENCY = 4


@dataclass(frozen=True)
class Checked:
    """What was found next to one manifest and what its verifiers said."""

    discovered: tuple[SignatureArtifact, ...]
    selection: Selection
    signatures: tuple[SignatureResult, ...]
    attestations: tuple[AttestationResult, ...]


class Verification:
    """Builds the facts of one image with the config's authorities and the given verifiers."""

    def __init__(self, config: Config, verifiers: Sequence[Verifier], metrics: Metrics) -> None:
        self.config = config
        self.verifiers = tuple(verifiers)
        self.metrics = metrics
        # The platform manifests of an index are checked side by side (each fetch has its own deadline).
        self._platforms = ThreadPoolExecutor(max_workers=PLATFORM_CONCURRENCY, thread_name_prefix="sigwarden-platform")

    def shutdown(self) -> None:
        """Stop checking platform manifests; checks already running finish in the background."""
        self._platforms.shutdown(wait=False, cancel_futures=True)

    def facts(self, image: ResolvedImage, store: Store, deadline: float) -> dict[str, Any]:
        """The facts of one manifest (and of its platform manifests when it is an index)."""
        in_scope = [a for a in self.config.authorities if a.covers(image.reference.name)]
        checked = self.check(image, store, in_scope, deadline)
        content = self.content(image, checked, store, in_scope, deadline)
        platforms = self.platform_checks(image, store, in_scope, deadline) if image.is_index else {}
        return build_facts(image, checked.signatures, checked.attestations, checked.selection.found,
                           len(in_scope), omitted=checked.selection.omitted, max_signatures=checked.selection.limit,
                           content=content, platform_checks=platforms,
                           skipped=skipped_by(in_scope, image.reference.name))

    def content(self, image: ResolvedImage, checked: Checked, store: Store, in_scope: Sequence[Authority],
                deadline: float) -> dict[str, list[dict[str, Any]]]:
        """The content facts of one manifest: its attestations and its signed content referrers."""
        referrers = [result for artifact in content_referrers(checked.discovered)
                     for result in check_referrer(image, artifact, store, self._referrer_signatures(
                         store, in_scope, deadline), deadline)]
        return content_facts([*checked.attestations, *referrers], {a.name: a.purposes for a in in_scope},
                             self.config.verification.vulnerability_floor, image.digest)

    def _referrer_signatures(self, store: Store, in_scope: Sequence[Authority],
                             deadline: float) -> Callable[[ResolvedImage], Sequence[SignatureResult]]:
        """Signatures on a content referrer, per authority (purposes are the content summary's business)."""
        return lambda referrer: self.check(referrer, store, in_scope, deadline, images_only=False).signatures

    def check(self, image: ResolvedImage, store: Store, in_scope: Sequence[Authority],
              deadline: float, images_only: bool = True) -> Checked:
        """Discover and verify what is attached to one manifest; signatures of authorities not serving the
        `image` purpose are reported, never counted (`images_only`)."""
        artifacts = store.discover(image, deadline)
        selection = select(artifacts, self.config.verification.max_signatures, in_scope)
        signatures: list[SignatureResult] = []
        attestations: list[AttestationResult] = []
        for verifier in self.verifiers:
            authorities: list[Authority] = [a for a in in_scope if verifier.applies_to(a)]
            if not authorities:
                continue
            started = time.perf_counter()
            outcome = verifier.verify(image, selection.artifacts, authorities, store, deadline)
            self.metrics.verifier_seconds.labels(verifier.name).observe(time.perf_counter() - started)
            signatures.extend(outcome.signatures)
            attestations.extend(outcome.attestations)
        if images_only:
            by_name = {a.name: a for a in in_scope}
            signatures = [for_images_only(s, by_name[s.authority]) if s.authority in by_name else s
                          for s in signatures]
        return Checked(tuple(artifacts), selection, tuple(signatures), tuple(attestations))

    def platform_checks(self, index: ResolvedImage, store: Store, in_scope: Sequence[Authority],
                        deadline: float) -> dict[str, PlatformCheck]:
        """Signatures on each platform manifest of an index (attestation manifests are not platforms)."""
        checks: dict[str, PlatformCheck] = {}
        platforms = checked_platforms(index.platforms)
        if not in_scope:  # nothing could vouch for them: no fetching
            reason = f"no configured authority covers {index.reference.name}"
            return {p.digest: PlatformCheck(False, (), reason) for p in platforms}

        def check(digest: str) -> PlatformCheck:
            try:
                image = store.resolve(index.reference.with_digest(digest, keep_tag=False), deadline)
            except ItemError as exc:
                return PlatformCheck(False, (), f"platform manifest: {exc}")
            checked = self.check(image, store, in_scope, deadline)
            # A node runs this manifest, not the index: its own reports and SBOMs are its content.
            content = self.content(image, checked, store, in_scope, deadline)
            return platform_check(image, checked.signatures, checked.selection.found, len(in_scope), content)

        digests = list(dict.fromkeys(p.digest for p in platforms))  # one check per manifest, however often listed
        checks.update(zip(digests, self._platforms.map(check, digests), strict=True))
        return checks


def for_images_only(signature: SignatureResult, authority: Authority) -> SignatureResult:
    """A signature counted only if its authority may sign images (else reported, with the reason)."""
    if not signature.verified or authority.serves("image"):
        return signature
    return replace(signature, verified=False,
                   reason=f"authority {authority.name} may not sign images (purposes: {', '.join(authority.purposes)})")


def skipped_by(authorities: Sequence[Authority], repository: str) -> tuple[Skip, ...]:
    """Image authorities whose notation trust policy skips verification for `repository`."""
    skips = []
    for authority in authorities:
        statement = authority.notation.trust_policy.skipping(repository) if authority.notation else ""
        if statement and authority.serves("image"):
            skips.append(Skip(authority.name, statement))
    return tuple(skips)
