"""Reporting: figures (plots), the sentences that read a table (describe), the live temperature slider (widgets)
and the papermill runner with its HTML report (papermill)."""
