"""Small Kubernetes API client and the in-pod jobs that need it: serving certificates, Gatekeeper's client CA
and constraint delivery. No cluster state is read anywhere else in sigwarden."""
