"""Prometheus metrics: what is counted (`instruments`), where the values live across
processes (`multiproc`), the scrape endpoint and its protection (`views`, `access`).

Recording is a no-op while metrics are off (neither METRICS_TOKEN nor
METRICS_ALLOWED_IPS set): call the functions of `metrics.instruments` freely.
"""
