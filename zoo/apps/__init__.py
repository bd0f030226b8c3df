"""Applications on top of the library: figures, the demo, the benchmark suite and the web app."""
