"""The SEPM lab: realistic server and client trees, and the steps of the certificate-renewal incident.

Tests, the demo, benchmarks and fire drills all run on it, so it writes files the way SEPM does.
"""
