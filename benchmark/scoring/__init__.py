"""Scoring: checked predictions (``predictions``), the probes (``probes``), the one
obvious call ``evaluate`` (``evaluate``), paired comparisons (``compare``) and the
recomputation of stored reports from their predictions (``rescore``)."""
