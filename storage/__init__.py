"""Where this app keeps data on disk, and how it opens SQLite: the bottom layer, importing nothing of ours.

Every other package (explainers' cache, models' runtime measurements, studies' answer store, the pages)
asks :func:`folder` for its folder and :func:`connect` / :func:`transaction` for a database, so there is one
rule for each.
"""

from storage.folders import FOLDERS, folder
from storage.sqlite import connect, transaction

__all__ = ["FOLDERS", "connect", "folder", "transaction"]
