"""sigwarden: verified image-signature facts for OPA Gatekeeper's external data."""

__version__ = "0.1.0"
