"""Insights: what shoppers ask for, and where the catalog falls short of it.

A stage above retrieval, beside outfits and taste; the engine calls into it, never the reverse.
- log      the demand log: each search and outfit request, written off the request path
- store    its SQLite file (WAL), retention, the rows of a time window as tables
- wants    what a logged request wants (catalog values) and how many items have them
- report   a window's demand against the catalog: most asked, gaps, supply, photos, verdicts
- show     the report as text, JSON and CSV
"""
from fashion_rag.insights.log import DemandLog
from fashion_rag.insights.report import Report, build_report

__all__ = ["DemandLog", "Report", "build_report"]
