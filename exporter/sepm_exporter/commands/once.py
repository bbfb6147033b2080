"""One-shot commands: `metrics` prints the exposition, `textfile` writes it for a textfile collector."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from sepm_exporter.assembly import rescan, scanned
from sepm_exporter.commands.progress import Progress
from sepm_exporter.runtime import Exporter
from sepm_exporter.settings.config import Config


def scan_once(config: Config, probe: bool = False) -> Exporter:
    """One full scan (with progress on a terminal) and one poll of every API."""
    progress = Progress()
    try:
        return scanned(config, progress, probe=probe)
    finally:
        progress.close()


def run_metrics(config: Config) -> int:
    sys.stdout.buffer.write(scan_once(config, probe=True).exposition)
    return 0


def textfile_target_problem(output: Path) -> str:
    """Why `--output` cannot be written, before a scan is spent on it ("" when it can)."""
    if output.suffix != ".prom":
        return "must end in .prom (textfile collectors ignore other files)"
    if not output.parent.is_dir():
        return f"folder {output.parent} does not exist (create it, or point --output at the collector's folder)"
    return ""


def write_textfile(exporter: Exporter, output: Path) -> None:
    """Atomic and in the encoding windows_exporter accepts: UTF-8 without BOM, newline-terminated."""
    temp = output.with_name(f".{output.name}.tmp")
    temp.write_bytes(exporter.exposition)
    os.replace(temp, output)


def run_textfile(config: Config, output: Path, interval: float) -> int:
    """Write once, or every `interval` seconds until stopped; a write that fails ends it (exit 1)."""
    exporter = scan_once(config)
    while True:
        try:
            write_textfile(exporter, output)
        except OSError as exc:
            print(f"--output: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        if interval <= 0:
            return 0
        time.sleep(interval)
        rescan(exporter)
