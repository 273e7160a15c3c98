"""What adapters share to talk to outside systems and to translate their failures.

One copy of each, for every adapter under ``providers/``:

- :mod:`providers.transport.retry_after`: how long an answer asks rotator to
  wait (``Retry-After``, in seconds or as an HTTP date) and the server's own
  clock (``Date``);
- :mod:`providers.transport.failures`: how an HTTP status (and a provider's
  error codes) ends for ``rotator_provider_requests_total``, and emptying an
  SDK exception once it has been translated;
- :mod:`providers.transport.http`: rotator's HTTPS client on httpx (checked
  URLs, TLS, the proxy, one request and its answer, signed bodies, the errors
  of a refused or unanswered request: httpx's exceptions are read there and
  nowhere else);
- :mod:`providers.transport.commands`: running a command with a value on its
  standard input, in a small environment, and ending the commands still
  running when rotator stops.

Like every adapter, these modules import only the public SDK
(:mod:`rotator.adapters`), :mod:`rotator.errors`, :mod:`rotator.output` and
:mod:`rotator.clock`; adapters import them, never each other.
"""
