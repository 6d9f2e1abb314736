"""Fault injection against a real broker and real ``driftcal run`` processes.

* :mod:`.corpus`: a seeded generator of malformed event batches, each with the reasons the codec may give.
* :mod:`.harness`: a daemon subprocess with metrics, health and memory sampling; producers and
  ``read_committed`` readers; :class:`~.harness.ScenarioResult`, the figures every scenario reports.
* :mod:`.scenarios`: the five scenarios (``kill9``, ``broker_outage``, ``malformed``, ``overload``,
  ``sigterm``), shared by ``tests/faults/`` (which assert on their results) and ``benchmarks/faults.py``
  (which reports them).
"""
