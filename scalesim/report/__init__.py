"""Self-contained HTML reports: run directories, a fitted model, validation and prediction
outputs drawn as Altair charts, with Vega/Vega-Lite/vega-embed inlined so the file opens offline.

    inputs.py  read and tolerate the inputs (runs, model, validation CSV, predict JSON)
    frames.py  derive the tables each chart draws (measured summaries, model curves, bands)
    charts.py  one Altair chart builder per chart
    page.py    HTML assembly: escaping, inlined JavaScript, render-status marker
    html.py    the `scalesim report` command
"""
