"""The keyless stand-in lives in provider.devkit.fulcio (the fixture world signs with it); this name stays for the
tests that import it from here."""

from provider.devkit.fulcio import FULCIO_ISSUER, ISSUER, NOW, SCT_LIST_OID, Sigstore, ca, leaf, sct_list, spki

__all__ = ["FULCIO_ISSUER", "ISSUER", "NOW", "SCT_LIST_OID", "Sigstore", "ca", "leaf", "sct_list", "spki"]
