"""The semantic tier: embeddings of the last user turn, matched in Qdrant within one scope.

The composition root chooses the store and the embedder by name (:mod:`proxy.registry`) and builds a
:class:`~proxy.semantic.tier.SemanticCache` from them; :func:`shared_encoder` is the in-process model.
"""

from proxy.semantic.encoders import shared_encoder

__all__ = ["shared_encoder"]
