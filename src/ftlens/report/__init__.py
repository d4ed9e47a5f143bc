"""The report: one offline HTML page, a Markdown summary and a JSON verdict for a run directory.

A run directory (RUN_DIR) holds what ftlens commands print with ``--json`` and what runs write;
every file is optional, but at least one of the section files must be there:

``audit.json``       ``ftlens audit --json``: format errors, tokens and cost, labels, duplicates
``curves.json``      ``ftlens curves --json``: the loss-curve diagnosis
``eval.json``        ``ftlens metrics --json`` (or ``ftlens eval --json``), possibly with
                     ``--compare`` against a baseline
``provenance.json``  data files with sha256 hashes, model, hyperparameters, ftlens version, date
                     (:func:`ftlens.report.provenance.write_provenance` writes it)
``results.csv``      a run's result CSV (OpenAI's or the local engine's): diagnosed for the loss
                     section when ``curves.json`` is missing or carries no points

:func:`ftlens.report.render.write_report` reads the directory (:mod:`ftlens.report.rundir`),
checks it into a typed :class:`ftlens.report.model.Report`, and writes ``report.html``,
``report.md`` and ``report.json``.
"""

from __future__ import annotations

AUDIT_FILE = "audit.json"
CURVES_FILE = "curves.json"
EVAL_FILE = "eval.json"
PROVENANCE_FILE = "provenance.json"
RESULTS_FILE = "results.csv"
SECTION_FILES = {"audit": AUDIT_FILE, "curves": CURVES_FILE, "eval": EVAL_FILE}
