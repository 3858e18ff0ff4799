"""`make bench`: the service against its floors, side by side in the same run.

Run `python -m bench --help` for the options; docs/BENCHMARKS.md has the results and how they
were obtained. Nothing here is part of `make test`.
"""
