"""``rotator run`` without ``--once``: the service, with /metrics and the probes.

Apart from :mod:`.rotation` so that a one-shot run never imports the
service loop, its metrics (prometheus_client) or its HTTP endpoint.
"""

from __future__ import annotations

from datetime import timedelta

from rotator.adapters import shutdown
from rotator.cli.engines import engine_for
from rotator.cli.environment import listen_address
from rotator.clock import system_clock
from rotator.service.health import HealthServer
from rotator.service.loop import Service, ServiceSettings
from rotator.service.metrics import Metrics


def serve(
    config: str,
    state: str,
    *,
    concurrency: int | None,
    reconcile: float,
    shutdown_deadline: float,
    listen: str,
) -> int:
    """Build the service over ``--config`` and ``--state``, and run it until a signal stops it."""
    metrics = Metrics(system_clock)
    engine = engine_for(
        config,
        state,
        mode="service",
        concurrency=concurrency,
        on_request=metrics.provider_request,
    )
    service = Service(
        engine,
        config,
        settings=ServiceSettings(reconcile=reconcile, shutdown_deadline=shutdown_deadline),
        metrics=metrics,
    )
    return run_until_stopped(service, metrics, listen, reconcile)


def run_until_stopped(service: Service, metrics: Metrics, listen: str, reconcile: float) -> int:
    """Run the service until a signal stops it, with /metrics and the probes on ``listen``."""
    service.install_signal_handlers()
    probe = None
    if listen:
        host, port = listen_address(listen)  # checked already, as the option was read
        # Alive while passes keep coming: the loop wakes at least every --reconcile.
        within = timedelta(seconds=3 * reconcile + 60)
        probe = HealthServer(
            metrics,
            host=host,
            port=port,
            alive=lambda: service.last_pass is None or service.alive(within),
            ready=service.ready,
        )
        probe.start()  # logs where it listens, with the port actually bound
    try:
        return service.run()
    finally:
        shutdown.end_outside_work()  # hooks still running at the deadline: end their groups
        if probe is not None:
            probe.stop()
