"""Monitoring: metrics, the savings ledger, usage history and the request log.

:class:`Telemetry` records (its observer is handed to every part that reports events); the
:class:`Monitoring` component serves ``/metrics*`` and runs the jobs that fold, flush and prune.
"""

from proxy.monitoring.component import Monitoring
from proxy.monitoring.observer import MonitoringObserver
from proxy.monitoring.telemetry import Telemetry

__all__ = ["Monitoring", "MonitoringObserver", "Telemetry"]
