"""Data text made inert where it is displayed: shop data never becomes markup.

Category, brand, segment, title and id values come from the shop's files and may hold anything,
``<a href="https://evil.example/">x</a>`` included. Two renderers turn text into markup:

* **plotly** draws labels, hovers, tick labels, legend names, annotations and table cells
  through a subset of HTML (``<a href>``, ``<b>``, ``<br>``, ``<span style>``) and decodes the
  entities ``&lt;``, ``&gt;``, ``&amp;``: :func:`html_text` escapes exactly those three
  characters, so the label shows the string as the shop wrote it and nothing is parsed.
  (``&quot;`` is not among plotly's entities, so quotes are left alone.)
* **Streamlit markdown** (``st.markdown``, ``st.caption``, ``st.error`` ..., widget and expander
  labels): :func:`markdown_text` backslash-escapes each character that markdown, HTML or
  Streamlit's directives would read as markup where it stands (CommonMark escapes any ASCII
  punctuation; the rest is left as written, so a message stays readable in its source) and
  breaks GFM's autolinks with an invisible word joiner; :func:`markdown_message` does the same
  for a whole message while keeping its `code spans` (which markdown never parses).

Apply each once, where a data string meets its renderer (a chart builder, a page's message),
never to fixed template text, and never twice.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

#: What Streamlit's markdown (CommonMark, GFM, its ``$math$`` and ``:directives[]``) could read
#: as markup, each matched on the one character a backslash must escape: markup characters
#: anywhere; an underscore at a word edge (``item_id`` is text, ``_x_`` emphasis); a colon
#: opening an emoji, icon or colour (``:smile:``, ``:red[``); at a line start, a list, quote or
#: setext marker, and the ``.``/``)`` of an ordered list.
_MARKUP = re.compile(
    r"[\\`*\[\]<>~$|#&]"
    r"|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])"
    r"|:(?=[A-Za-z0-9_+\-/\[])"
    r"|(?<=^)[ \t]*[-+=]|(?<=\n)[ \t]*[-+=]"
    r"|(?:^|(?<=\n))[ \t]*\d+[.)]"
)
#: A code span as CommonMark reads it once every other backtick is escaped: one backtick, text
#: without backticks or line breaks, one backtick, with no backtick either side.
_CODE_SPAN = re.compile(r"(?<!`)`[^`\n]+`(?!`)")
#: What GFM turns into a link in plain text (remark-gfm's autolink literals: ``http://``,
#: ``https://``, ``www.`` and e-mail addresses), matched up to where the joiner goes.
_AUTOLINK = re.compile(r"https?:(?=//)|www(?=\.)|@", re.IGNORECASE)
_JOINER = "\u2060"


def html_text(value: object) -> str:
    """``value`` as plotly text: ``<``, ``>`` and ``&`` as entities, shown literally."""
    return html.escape(str(value), quote=False)


def html_texts(values: Iterable[object]) -> list[object]:
    """:func:`html_text` of each text value of a column (categories, segments, setting names);
    numbers and missing values pass as they are, so a numeric axis stays numeric and a gap a
    gap."""
    return [html_text(v) if isinstance(v, str) else v for v in values]


def markdown_text(value: object) -> str:
    """``value`` as Streamlit markdown that shows the string as written: never a link, an image,
    HTML, emphasis, an emoji shortcode or a colour directive.

    Escaping alone cannot stop GFM's autolinks: they are found in the parsed text, so
    ``https\\://x`` still becomes a link. An invisible word joiner (U+2060) after ``https:``,
    ``www`` and ``@`` breaks those patterns; the text reads the same.
    """
    text = _AUTOLINK.sub(lambda m: m.group(0) + _JOINER, str(value))
    return _MARKUP.sub(lambda m: m.group(0)[:-1] + "\\" + m.group(0)[-1], text)


def markdown_message(message: str) -> str:
    """A message (an error, a hint) as markdown: its `code spans` stay code, everything else is
    :func:`markdown_text`, so data quoted in the message (a column name, a file name) is inert.

    Every backtick outside a kept span is escaped, so the parser sees exactly the kept spans'
    backticks as delimiters and the rest as literal text.
    """
    out, pos = [], 0
    for m in _CODE_SPAN.finditer(message):
        out.append(markdown_text(message[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(markdown_text(message[pos:]))
    return "".join(out)
