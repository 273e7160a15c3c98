"""A proxy in front of a test's Vault that answers ``application/json; charset=utf-8``.

Some proxies and gateways in front of Vault add a charset where Vault said
``application/json``. hvac reads the JSON error envelope (``exc.errors``,
``exc.json``) only when the Content-Type is exactly ``application/json``, so
behind such a proxy an error reaches the adapters with its raw body text
only. :class:`ContentTypeProxy` is that proxy, for tests::

    with ContentTypeProxy(backend.url) as proxy:
        monkeypatch.setenv("VAULT_ADDR", proxy.url)
"""

from __future__ import annotations

from tests.proxy import ForwardingProxy

#: What the proxy answers instead of ``application/json``.
CHARSET_JSON = "application/json; charset=utf-8"


class ContentTypeProxy(ForwardingProxy):
    """Forwards every request to its upstream; answers :data:`CHARSET_JSON` where it said JSON."""

    def relabel(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Return the answer's headers with ``application/json`` made :data:`CHARSET_JSON`."""
        return [
            (name, CHARSET_JSON)
            if name.lower() == "content-type" and value == "application/json"
            else (name, value)
            for name, value in headers
        ]
