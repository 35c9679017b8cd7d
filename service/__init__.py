"""The work under the pages, for every caller alike (the Compare page, ui/state, the PDF report, the command line):
plain values in and out, never streamlit. Callers pass in what they cache (superpixels, the head mask)."""
