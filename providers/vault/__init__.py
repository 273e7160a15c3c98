"""HashiCorp Vault adapters (KV v2 store, AppRole secret-id and token issuers) and an emulator."""
