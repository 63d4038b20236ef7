"""The report's HTML: sections in, one self-contained page out (inline CSS, SVG, images and the
small script that shows a detection's score on hover or keyboard focus)."""
from __future__ import annotations

from html import escape

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 980px; padding: 0 16px 48px; color: #1a1a1a; }
nav ul { display: flex; flex-wrap: wrap; gap: 4px 16px; padding: 0; list-style: none; }
h1 { margin-top: 24px; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 36px; }
table { border-collapse: collapse; font-size: 13px; } th, td { padding: 2px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; } tr:nth-child(even) { background: #f4f4f4; }
pre { background: #f6f6f6; padding: 8px; overflow: auto; font-size: 12px; max-height: 420px; }
figure { margin: 16px 0; } figcaption { font-size: 13px; color: #444; }
svg.figure { width: 100%; max-width: 760px; height: auto; }
svg.timeline .gt { fill: #2ca02c; } svg.timeline .det { fill: #1f77b4; stroke: #0b3d66; stroke-width: 0.5; }
svg.timeline .det:hover, svg.timeline .det:focus { stroke: #d62728; stroke-width: 2; outline: none; }
svg.timeline text { font-size: 11px; } svg.timeline .grid { stroke: #ddd; }
.thumbs { display: flex; gap: 4px; margin-left: 16.6%; } .thumbs figure { margin: 0; text-align: center; }
.thumbs img { width: 100%; max-width: 96px; } .thumbs figcaption { font-size: 11px; }
#tip { position: absolute; background: #222; color: #fff; padding: 3px 7px; border-radius: 3px; font-size: 12px;
       pointer-events: none; }
"""

SCRIPT = """
const tip = document.getElementById('tip');
function showTip(event) {
  const box = event.target.getBoundingClientRect();
  tip.textContent = event.target.dataset.tip;
  tip.style.left = (box.left + window.scrollX) + 'px';
  tip.style.top = (box.bottom + window.scrollY + 4) + 'px';
  tip.hidden = false;
}
function hideTip() { tip.hidden = true; }
for (const rect of document.querySelectorAll('rect.det')) {
  rect.addEventListener('mouseenter', showTip);
  rect.addEventListener('focus', showTip);
  rect.addEventListener('mouseleave', hideTip);
  rect.addEventListener('blur', hideTip);
}
"""


def table(header: list[str], rows: list[list[str]], caption: str) -> str:
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(markup: str, caption: str) -> str:
    return f"<figure>{markup}<figcaption>{escape(caption)}</figcaption></figure>"


def page(title: str, sections: list[tuple[str, str, str]]) -> str:
    """``sections``: (anchor, heading, HTML body)."""
    nav = "".join(f'<li><a href="#{a}">{escape(h)}</a></li>' for a, h, _ in sections)
    body = "".join(f'<section id="{a}" aria-labelledby="{a}-h"><h2 id="{a}-h">{escape(h)}</h2>{html}</section>'
                   for a, h, html in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
            f'<style>{STYLE}</style></head><body><header><h1>{escape(title)}</h1></header>'
            f'<nav aria-label="sections"><ul>{nav}</ul></nav><main>{body}</main>'
            f'<div id="tip" role="tooltip" hidden></div><script>{SCRIPT}</script></body></html>\n')
