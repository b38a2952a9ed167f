"""The embedding microservice and the two :class:`proxy.contracts.Embedder` implementations.

``LocalEmbedder`` runs the model in-process; ``HttpEmbedder`` calls the service. Import them from their
modules (``embedding_service.local``, ``embedding_service.client``): importing this package stays cheap.
"""
