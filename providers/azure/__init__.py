"""Azure Key Vault adapters (secrets store, Azure identities) and a Key Vault emulator."""
