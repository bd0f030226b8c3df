"""The benchmark suite: plain path (eager, fp32, NCHW) against the fast paths, measured as ratios in one run.

``python -m benchmarks.run`` / ``zoo-cli bench [MODEL...]`` run :func:`zoo.apps.bench.suite.run_suite`, print a
table and write JSON. Sections: ``machine`` (:mod:`zoo.apps.bench.timing`), ``models``
(:mod:`zoo.apps.bench.models`), ``data`` (:mod:`zoo.apps.bench.data`), ``ldl`` and ``knn`` (:mod:`zoo.apps.bench.ldl`),
``predict`` (:mod:`zoo.apps.bench.predict`).
"""

from zoo.apps.bench.models import DEFAULT_MODELS, bench_model, run_isolated
from zoo.apps.bench.suite import SECTIONS, format_tables, run_suite

__all__ = ["DEFAULT_MODELS", "SECTIONS", "bench_model", "format_tables", "run_isolated", "run_suite"]
