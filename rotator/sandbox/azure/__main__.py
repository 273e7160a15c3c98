"""``python -m rotator.sandbox.azure``: serve an emulated Key Vault until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import sys

from rotator.sandbox.azure import KeyVaultEmulator
from rotator.sandbox.azure.apim import DEFAULT_AZURE_SUBSCRIPTION, DEFAULT_RESOURCE_GROUP
from rotator.sandbox.azure.server import DEFAULT_TENANT_ID, DELETE_DELAY, RECOVER_DELAY
from rotator.sandbox.core.shell import stop_on_signals, wait_for


def service_and_sid(value: str) -> tuple[str, str]:
    """Parse ``SERVICE/SID``: an API Management service and a subscription's id in it."""
    service, slash, sid = value.partition("/")
    if not slash or not service or not sid or "/" in sid:
        raise argparse.ArgumentTypeError(
            f"expected SERVICE/SID, such as demo-apim/partner, not {value!r}"
        )
    return service, sid


def main(argv: list[str] | None = None) -> int:
    """Start the emulator, print the shell exports for it, and serve until told to stop."""
    parser = argparse.ArgumentParser(
        prog="python -m rotator.sandbox.azure",
        description="Serve an emulated Azure Key Vault (secrets) over HTTPS, with an MSI endpoint.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8443, help="vault port; 0 picks a free one")
    parser.add_argument(
        "--tenant-id",
        default=DEFAULT_TENANT_ID,
        help="tenant named in the 401 challenge and required in tokens",
    )
    parser.add_argument(
        "--recoverable-days", type=int, default=90, help="soft-delete retention, 7-90 days"
    )
    parser.add_argument(
        "--no-soft-delete", action="store_true", help="emulate a vault without soft delete"
    )
    parser.add_argument(
        "--purge-protection",
        action="store_true",
        help="emulate a vault with purge protection: purges are refused (403)",
    )
    parser.add_argument(
        "--delete-delay",
        type=float,
        default=DELETE_DELAY,
        help=f"seconds a delete takes to complete (default {DELETE_DELAY:g})",
    )
    parser.add_argument(
        "--recover-delay",
        type=float,
        default=RECOVER_DELAY,
        help=f"seconds a recover takes to complete (default {RECOVER_DELAY:g})",
    )
    parser.add_argument(
        "--apim-subscription",
        action="append",
        default=[],
        type=service_and_sid,
        metavar="SERVICE/SID",
        help="create this API Management subscription (and its service); repeatable",
    )
    parser.add_argument(
        "--azure-subscription",
        default=DEFAULT_AZURE_SUBSCRIPTION,
        help="Azure subscription id of the API Management services",
    )
    parser.add_argument(
        "--resource-group",
        default=DEFAULT_RESOURCE_GROUP,
        help=f"resource group of the API Management services (default {DEFAULT_RESOURCE_GROUP})",
    )
    args = parser.parse_args(argv)
    if args.purge_protection and args.no_soft_delete:
        parser.error("--purge-protection needs soft delete")
    if args.delete_delay < 0 or args.recover_delay < 0:
        parser.error("--delete-delay and --recover-delay cannot be negative")

    stop = stop_on_signals()
    emulator = KeyVaultEmulator(
        host=args.host,
        port=args.port,
        tenant_id=args.tenant_id,
        recoverable_days=args.recoverable_days,
        soft_delete=not args.no_soft_delete,
        purge_protection=args.purge_protection,
        delete_delay=args.delete_delay,
        recover_delay=args.recover_delay,
    )
    with emulator as kv:
        for service, sid in args.apim_subscription:
            # Its keys stay in the emulator: read them as a client would (listSecrets).
            kv.apim.add_subscription(
                service,
                sid,
                azure_subscription=args.azure_subscription,
                resource_group=args.resource_group,
            )
        print(f"export AZURE_KEYVAULT_URL={kv.vault_url}", flush=True)
        print(f"export REQUESTS_CA_BUNDLE={kv.ca_path}", flush=True)
        print(f"export IDENTITY_ENDPOINT={kv.identity_endpoint}", flush=True)
        print(f"export IDENTITY_HEADER={kv.identity_header}", flush=True)
        wait_for(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
