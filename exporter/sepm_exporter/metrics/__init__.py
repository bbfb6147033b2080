"""Exposition: metric families by area, rendered to the Prometheus text format."""
