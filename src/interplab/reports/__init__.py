"""Report folders: the index.json format (index.py), the writer (writer.py), and charts for their figures
(png_charts.py: matplotlib PNGs; svg_charts.py: offline interactive HTML)."""

from interplab.reports.index import FigureEntry, ReportIndex, TableEntry, parse_index, read_index
from interplab.reports.writer import (
    ReportWriter,
    refuse_to_replace_report,
    start_report,
    write_index,
    write_table_files,
)

__all__ = [
    "FigureEntry",
    "ReportIndex",
    "ReportWriter",
    "TableEntry",
    "parse_index",
    "read_index",
    "refuse_to_replace_report",
    "start_report",
    "write_index",
    "write_table_files",
]
