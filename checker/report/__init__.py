"""Reviewable reports of checker results: a static HTML site and Markdown summaries.

The package knows nothing of what a spec models.  It renders a small document model
(:mod:`checker.report.doc`) to HTML and Markdown, turns :class:`~checker.result.Result`
objects into sections (statistics, properties, coverage, counterexamples), draws state
graphs with graphviz (:mod:`checker.report.graphs`) and writes or checks a site
(:mod:`checker.report.site`).  Front ends add their own sections as document blocks.

Everything written is deterministic: no timestamps, no wall times, no absolute paths,
sorted iteration, and graphviz's version banner stripped from SVG output.
"""
