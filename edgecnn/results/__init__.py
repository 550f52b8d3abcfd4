"""What edgecnn measured, as files: the validation report and the benchmark result.

Each is a typed record with a schema version and one read and one write (``report.py``,
``bench.py``, over ``schema.py``'s converter); the renderers beside them -- Markdown, the
terminal, the HTML page -- take records, never dicts, and draw the variant x CPU-class matrix
from ``matrix.py``.
"""
