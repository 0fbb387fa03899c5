"""Monitoring as code for cryptoliq-exporter: Grafana dashboards and Prometheus rules.

Everything under ``provisioning/grafana/dashboards/*.json`` and
``provisioning/prometheus/rules/*.yml`` is generated from this package, so a threshold, a uid or a
query is changed in one place and every artifact that depends on it follows. Regenerate with
``python -m dashboards``; ``tests/test_dashboards.py`` fails when the committed files differ.

Layout, as in a monitoring mixin: ``config`` holds the thresholds and identities, ``common`` the
panel and variable helpers, one module per dashboard, ``rules`` the recording and alerting rules,
``generate`` the list of artifacts and how they are written.
"""
