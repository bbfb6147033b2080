"""Allows `python -m sepm_exporter`."""

import sys

from sepm_exporter.cli import main

sys.exit(main())
