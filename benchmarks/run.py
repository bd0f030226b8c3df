"""The benchmark suite: ``python -m benchmarks.run [MODEL...] [--quick] [--out FILE]`` (see docs/performance.md).

The code lives in :mod:`zoo.apps.bench` so that ``zoo-cli bench`` runs the same suite from an installed package.
"""

from zoo.apps.bench.suite import main

if __name__ == "__main__":
    main()
