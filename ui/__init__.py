"""Streamlit glue shared by app.py and the pages: selections, cached resources, progress. No maths here."""
