"""Rego evaluation the way Gatekeeper does it, with real external data from the provider."""
