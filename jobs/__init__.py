"""The job engine on Dask distributed: an embedded LocalCluster or a scheduler's address (see jobs.engine)."""

from jobs.engine import Engine, Job, JobFailed, JobStatus

__all__ = ["Engine", "Job", "JobFailed", "JobStatus"]
