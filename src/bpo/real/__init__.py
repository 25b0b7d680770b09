"""Loaders for real data sets: the released BPO preference JSON, LLaVA-style conversation JSON
(the ground-truth sources) and benchmarks. Each loader returns what it read plus a
:class:`~bpo.real.errors.LoadReport` listing every record it skipped and why; malformed files raise
:class:`~bpo.real.errors.DataError` naming the file, row and field."""
