"""A bulletin's tables as an A4 HTML page (charts drawn as inline SVG: they print as they show, with no script),
an XLSX workbook (a sheet per table, with charts) and CSV files (one per table)."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from html import escape
from pathlib import Path
from typing import BinaryIO

import openpyxl
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from console.bulletin.figures import Bulletin
from console.bulletin.narrative import opening
from console.bulletin.tables import Table, tables, word
from console.words import Language

_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_ENV = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html"]))


def stem(b: Bulletin) -> str:
    """The files' common name: bulletin-2026-11 or bulletin-2026-11-城区."""
    return f"bulletin-{b.period.label}" + (f"-{b.scope}" if b.scope else "")


def title(b: Bulletin, lang: Language) -> str:
    scope = b.scope or ("全市" if lang == "zh" else "city")
    if lang == "zh":
        kind = "月度通报" if b.period.kind == "monthly" else "周报"
        return f"学校食堂食品安全{kind}（{scope}，{b.period.label}）"
    kind = "Monthly bulletin" if b.period.kind == "monthly" else "Weekly report"
    return f"School canteen food safety — {kind}, {scope}, {b.period.label}"


def to_html(b: Bulletin, lang: Language = "zh") -> str:
    laid_out = tables(b, lang)
    by_key = {t.key: t for t in laid_out}
    days = by_key["days"].rows
    districts = by_key["districts"].rows
    charts = {
        "days": _bars(
            [str(r[0])[5:] for r in days], [float(r[1] or 0) for r in days], word("tests", lang), colour="#3b6ea8"
        ),
        "districts": _bars(
            [str(r[1]) for r in districts],
            [float(r[4] or 0) for r in districts],
            word("pass_rate", lang) + " %",
            colour="#3f8f5b",
            floor=min((float(r[4] or 0) for r in districts), default=0.0) // 1 - 1,
        ),
    }
    return _ENV.get_template("bulletin.html").render(
        title=title(b, lang),
        b=b,
        tables=laid_out,
        charts=charts,
        lang=lang,
        generated=b.generated_at,
        opening=opening(b, lang),
    )


def write_xlsx(b: Bulletin, path: Path | BinaryIO, lang: Language = "zh") -> None:
    book = openpyxl.Workbook()
    if book.active is not None:
        book.remove(book.active)  # the fresh workbook's empty sheet
    for table in tables(b, lang):
        sheet = book.create_sheet(_sheet_name(table.title))
        sheet.append([title(b, lang)] if table.key == "summary" else [table.title])
        sheet["A1"].font = Font(bold=True, size=13)
        sheet.append(table.columns)
        for cell in sheet[2]:
            cell.font = Font(bold=True)
        for row in table.rows:
            sheet.append(row)
        sheet.freeze_panes = "A3"
        for n, column in enumerate(table.columns, start=1):
            sheet.column_dimensions[get_column_letter(n)].width = max(10, min(40, 2 * len(column)))
        if table.key in ("days", "districts") and table.rows:
            _chart(sheet, table)
    book.save(path)


def _chart(sheet: Worksheet, table: Table) -> None:
    chart = BarChart()
    chart.title = table.title
    value_column = 2 if table.key == "days" else 5
    label_column = 1 if table.key == "days" else 2
    last = 2 + len(table.rows)
    chart.add_data(Reference(sheet, min_col=value_column, min_row=2, max_row=last), titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=label_column, min_row=3, max_row=last))
    chart.width, chart.height = 24, 9
    sheet.add_chart(chart, f"{get_column_letter(len(table.columns) + 2)}3")


def csv_files(b: Bulletin, lang: Language = "zh") -> dict[str, bytes]:
    """One CSV per table, by file name (UTF-8 with a byte-order mark, so that spreadsheet programs read the
    Chinese)."""
    files = {}
    for table in tables(b, lang):
        out = io.StringIO(newline="")
        writer = csv.writer(out)
        writer.writerow(table.columns)
        writer.writerows(["" if cell is None else cell for cell in row] for row in table.rows)
        files[f"{stem(b)}-{table.key}.csv"] = out.getvalue().encode("utf-8-sig")
    return files


def write_csv(b: Bulletin, directory: Path, lang: Language = "zh") -> list[Path]:
    paths = []
    for name, body in csv_files(b, lang).items():
        (directory / name).write_bytes(body)
        paths.append(directory / name)
    return paths


def csv_zip(b: Bulletin, lang: Language = "zh") -> bytes:
    """The CSV files in one zip, for a download."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in csv_files(b, lang).items():
            archive.writestr(name, body)
    return out.getvalue()


def _sheet_name(text: str) -> str:
    return re.sub(r"[\[\]:*?/\\]", " ", text)[:31]


def _bars(labels: list[str], values: list[float], caption: str, *, colour: str, floor: float = 0.0) -> Markup:
    """A bar chart as SVG: one bar per label, the value over it."""
    width, height, top, bottom, left = 680, 190, 18, 36, 8
    if not values:
        return Markup("")
    high = max(*values, floor + 1)
    step = (width - left) / len(values)
    bars = []
    for n, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = (height - top - bottom) * max(0.0, value - floor) / (high - floor)
        x = left + n * step
        y = height - bottom - h
        bars.append(
            f'<rect x="{x + step * 0.15:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" fill="{colour}"/>'
            f'<text x="{x + step / 2:.1f}" y="{y - 3:.1f}" font-size="8" text-anchor="middle">{value:g}</text>'
            f'<text x="{x + step / 2:.1f}" y="{height - bottom + 12:.1f}" font-size="8" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(caption)}">'
        f'<text x="{left}" y="11" font-size="10">{escape(caption)}</text>{"".join(bars)}</svg>'
    )
