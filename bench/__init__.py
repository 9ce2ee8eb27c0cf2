"""``make bench``: Interlock measured end to end through its gateway, beside Temporal.

Run ``python -m bench`` (or ``make bench``); ``BENCH_SCALE`` sizes every workload
(default 1: finishes in under 10 minutes on a 2-core machine). Results go to
``bench/results/latest.json`` and ``bench/results/throughput.png``.
"""
