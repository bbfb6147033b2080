"""The running exporter, in rooms that change apart: the client book (verdicts), the history store (the
state file), the problem log, the publisher (families -> exposition) and the report; `Exporter` is the
one writer that drives them."""

from sepm_exporter.runtime.exporter import REPORT_MAX_AGE, Exporter
from sepm_exporter.runtime.publisher import SERVER_FAMILIES
from sepm_exporter.runtime.report import Report, Root

__all__ = ["REPORT_MAX_AGE", "SERVER_FAMILIES", "Exporter", "Report", "Root"]
