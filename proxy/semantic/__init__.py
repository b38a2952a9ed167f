"""The semantic tier: embeddings of the last user turn, matched in Qdrant within one scope."""

from __future__ import annotations

from ..contracts import Observer, SemanticTier
from ..failopen import FailOpen
from ..settings import Settings
from ..tasks import BackgroundTasks


def build_semantic_tier(settings: Settings, *, observer: Observer, failopen: FailOpen,
                        tasks: BackgroundTasks) -> SemanticTier | None:
    """The configured semantic tier, or ``None`` when SEMANTIC_MODE is off (or not built yet)."""
    return None
