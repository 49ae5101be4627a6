"""Benchmarks for Barrio: ``python -m bench`` (or ``make bench``); see bench/README.md.

Each benchmark is a module listed in ``bench.__main__.BENCHMARKS`` that follows the
contract described in :mod:`bench.common`. Results are ratios against baselines measured
in the same run, in a throwaway database: there are no stored reference numbers.
"""
