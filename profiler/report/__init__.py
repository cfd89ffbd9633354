"""Renderers over one recorded Profile (or one comparison): each output format is one module.

text.py     rich tables for the terminal (render, render_access_summary)
jsonout.py  to_json: the profile's plain data plus computed tables and findings
html.py     write_html: one self-contained offline HTML file (jinja2 templates, inline SVG)
compare.py  render_compare / compare_to_json / write_compare_html for `dagprof compare`
tables.py   the plain-data rows all of them share, so every format shows the same numbers
svg.py      tiny inline-SVG chart builders
"""
