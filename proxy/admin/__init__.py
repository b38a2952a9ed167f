"""The operator's surface: admin routes, warm, the dashboard."""

from proxy.admin.component import OperatorSurface

__all__ = ["OperatorSurface"]
