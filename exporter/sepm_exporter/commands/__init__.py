"""The commands `cli.py` dispatches to: each builds its exporter through `assembly` and says what it found."""
