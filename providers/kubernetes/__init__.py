"""Kubernetes adapters: the ``kubernetes-secret`` target, and an API server emulator for tests.

- :mod:`providers.kubernetes.secret`: :class:`KubernetesSecretTarget`, one
  key of a Secret plus a ``kubectl rollout restart`` of the workloads that
  read it.
- :mod:`providers.kubernetes.client`: one API client per engine and
  kubeconfig context (in-cluster service account or kubeconfig), paced,
  metered and error-translated.
- :mod:`providers.kubernetes.errors`: the client's exceptions as
  :mod:`rotator.errors`.
- :mod:`rotator.sandbox.kubernetes.server`: a small Kubernetes API server
  (stdlib only) speaking the REST paths the adapter uses, for tests.

Nothing here imports the ``kubernetes`` package at module load: it is
imported inside the methods that send requests (the ``kubernetes`` extra).
"""
