"""``python -m rotator.sandbox.vault``: serve an emulated Vault until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import sys

from rotator.sandbox.core.shell import stop_on_signals, wait_for
from rotator.sandbox.vault import VaultEmulator


def main(argv: list[str] | None = None) -> int:
    """Start the emulator, print the shell exports for it, and serve until told to stop."""
    parser = argparse.ArgumentParser(
        prog="python -m rotator.sandbox.vault",
        description="Serve an emulated HashiCorp Vault (KV v2, tokens, AppRole, Kubernetes).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8200, help="port to bind; 0 picks a free one")
    parser.add_argument("--root-token", default=None, help="root token (default: random hvs.*)")
    args = parser.parse_args(argv)

    stop = stop_on_signals()
    with VaultEmulator(host=args.host, port=args.port, root_token=args.root_token) as vault:
        print(f"export VAULT_ADDR={vault.url}", flush=True)
        print(f"export VAULT_TOKEN={vault.root_token}", flush=True)
        wait_for(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
