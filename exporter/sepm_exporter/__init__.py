"""sepm-exporter: Prometheus metrics for SEPM certificates, SyLink.xml parity and client drift."""

__version__ = "0.1.0"
