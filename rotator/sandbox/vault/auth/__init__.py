"""The auth methods the Vault emulator serves, one module each, and what their logins share."""
