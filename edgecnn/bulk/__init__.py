"""Bulk inference over folders, globs, .npz and Parquet files, in one process or on Ray."""

from edgecnn.bulk.run import BulkSummary, predict_bulk

__all__ = ["BulkSummary", "predict_bulk"]
