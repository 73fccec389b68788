"""Text from the store written into documents: Markdown and CSV cells that cannot change their
document's structure, whatever a model's or a task's name holds."""

from __future__ import annotations

from typing import Any

MARKDOWN_SPECIAL = "\\`*_[]|#!"  # backslash-escaped: emphasis, code, links, images, tables, headings
CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as the start of a formula


def markdown(text: Any) -> str:
    """``text`` as literal Markdown (CommonMark and GitHub's tables): HTML and entities escaped, the
    characters that open emphasis, code, links, tables or headings backslash-escaped, and line breaks
    (and any other control character) made spaces, so a cell stays one cell of one line."""
    out = []
    for char in str(text):
        if char in MARKDOWN_SPECIAL:
            out.append("\\" + char)
        elif char == "&":
            out.append("&amp;")
        elif char == "<":
            out.append("&lt;")
        elif char == ">":
            out.append("&gt;")
        elif char.isprintable() or char == " ":
            out.append(char)
        else:
            out.append(" ")
    return "".join(out)


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, neutralised as OWASP's CSV-injection guidance
    says (a leading single quote); numbers and other text unchanged."""
    if isinstance(value, str) and value.startswith(CSV_TRIGGERS):
        return "'" + value
    return value


def csv_frame(frame: Any) -> Any:
    """A DataFrame whose text cells are ``csv_cell``s (column names too)."""
    from pandas.api.types import is_object_dtype, is_string_dtype

    frame = frame.copy()
    for column in frame.columns:
        if is_object_dtype(frame[column]) or is_string_dtype(frame[column]):
            frame[column] = frame[column].map(csv_cell)
    frame.columns = [csv_cell(str(c)) for c in frame.columns]
    return frame


def p_value(p: float) -> str:
    """A p-value in two significant digits; one below what a float holds is not printed as zero."""
    return f"{p:.2g}" if p > 0 else "< 1e-300"
