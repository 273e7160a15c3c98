"""``python -m rotator.sandbox.kubernetes``: serve an emulated API server until Ctrl-C/SIGTERM."""

from __future__ import annotations

import argparse
import sys

from rotator.sandbox.core.shell import stop_on_signals, wait_for
from rotator.sandbox.kubernetes import KubernetesEmulator

#: The workload options, by the kind :meth:`KubernetesEmulator.add_workload` takes.
WORKLOAD_KINDS = ("deployment", "statefulset", "daemonset")


def namespaced(value: str) -> tuple[str, str]:
    """Parse ``NAMESPACE/NAME``, as kubectl writes an object's place."""
    namespace, slash, name = value.partition("/")
    if not slash or not namespace or not name or "/" in name:
        raise argparse.ArgumentTypeError(
            f"expected NAMESPACE/NAME, such as demo/api, not {value!r}"
        )
    return namespace, name


def main(argv: list[str] | None = None) -> int:
    """Start the emulator, print the kubeconfig export for it, and serve until told to stop."""
    parser = argparse.ArgumentParser(
        prog="python -m rotator.sandbox.kubernetes",
        description="Serve an emulated Kubernetes API server (Secrets, workloads, RBAC checks).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument("--namespace", action="append", default=[], help="create this namespace")
    for kind in WORKLOAD_KINDS:
        parser.add_argument(
            f"--{kind}",
            action="append",
            default=[],
            type=namespaced,
            metavar="NS/NAME",
            help=f"create this {kind} (and its namespace); repeatable",
        )
    parser.add_argument(
        "--secret",
        action="append",
        default=[],
        type=namespaced,
        metavar="NS/NAME",
        help="create this empty Opaque Secret (and its namespace); repeatable",
    )
    args = parser.parse_args(argv)

    # SIGTERM ends the wait like Ctrl-C does, so the kubeconfig file is removed.
    stop = stop_on_signals()
    with KubernetesEmulator(host=args.host, port=args.port) as kube:
        for namespace in args.namespace or ["default"]:
            kube.add_namespace(namespace)
        for kind in WORKLOAD_KINDS:
            for namespace, name in getattr(args, kind):
                kube.add_workload(kind, namespace, name)
        for namespace, name in args.secret:
            kube.put_secret(namespace, name)
        print(f"export KUBECONFIG={kube.kubeconfig_path}", flush=True)
        wait_for(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
