"""On-demand benchmarks (`make bench`); never collected by pytest (testpaths is tests/)."""
