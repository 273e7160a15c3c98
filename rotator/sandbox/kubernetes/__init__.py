"""An emulated Kubernetes API server (Secrets, RBAC checks, watches)."""
