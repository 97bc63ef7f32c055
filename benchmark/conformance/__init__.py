"""Conformance kits for MedFail's extension points, the way scikit-learn ships
``check_estimator``: run one on your own class before you submit it, and it raises a
:class:`ConformanceError` naming the first rule your class breaks.

>>> from benchmark.conformance import check_model, check_probe, check_source
>>> check_probe(MyProbe())                                    # doctest: +SKIP
>>> check_source(MySource(), params={"path": "data.csv"})     # doctest: +SKIP
>>> check_model(my_model, benchmark.load_task("my-task"))     # doctest: +SKIP

The tests run every kit over every built-in probe, source and model family, and over
deliberately broken ones, which must fail.
"""

from __future__ import annotations

from benchmark.conformance.errors import ConformanceError
from benchmark.conformance.models import check_model
from benchmark.conformance.probes import check_probe, scoring_context
from benchmark.conformance.sources import check_source

__all__ = ["ConformanceError", "check_model", "check_probe", "check_source", "scoring_context"]
