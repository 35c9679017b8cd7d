"""Presentation: plotly figures and static PNG renderings of explanations and study results. Returns
figures and bytes; showing them is the page's job. Imports explainers' data types, never streamlit."""
