"""The admin listener: health, readiness and Prometheus metrics over HTTPS (issue 18).

Every worker serves it beside the KMIP ports when ``[admin] port`` is set, on the h11-based
HTTPS layer of transport/https_listener.py with routes of its own (routes.py). ``/healthz``
and ``/readyz`` answer without a client certificate, because load balancers probe them; the
rest needs the certificate of an identity the policy lets administer. Metrics are kept with
``prometheus_client`` in its multiprocess mode (metrics.py), so whichever worker answers a
scrape reports every worker's counts.
"""
