"""The PDF report's layout helpers (fpdf2): Latin-1 text, blocks kept whole on a page, section headings kept
with what follows them."""

from __future__ import annotations

from typing import Any

# fpdf2's core fonts are Latin-1: the few other characters we write are spelt out.
_LATIN1 = {
    "·": "-",
    "–": "-",
    "—": "-",
    "×": "x",
    "≈": "~",
    "↓": "(lower is better)",
    "↑": "(higher is better)",
    "ρ": "rho",
    "±": "+/-",
    "“": '"',
    "”": '"',
    "’": "'",
    "…": "...",
}


def latin1(value: Any) -> str:
    text = str(value)
    for character, replacement in _LATIN1.items():
        text = text.replace(character, replacement)
    return text.encode("latin-1", "replace").decode("latin-1")


def fit(pdf: Any, height: float) -> None:
    """A new page unless ``height`` mm still fit on this one (a block is never split across pages)."""
    if pdf.get_y() + height > pdf.h - pdf.b_margin:
        pdf.add_page()


def section(pdf: Any, title: str, keep: float = 20) -> None:
    """A section's heading, kept on a page with at least ``keep`` mm of what follows it."""
    fit(pdf, 9 + keep)
    pdf.ln(1)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 8, latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
