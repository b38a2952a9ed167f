# cachegate: the proxy and the embedding service share one image (`cachegate serve` / `cachegate embed`).
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

# The CPU build of torch: the default wheel drags in several GB of CUDA libraries we never use.
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "${TORCH_INDEX_URL}" "${TORCH_SPEC}"

WORKDIR /app
COPY pyproject.toml README.md dashboard.html ./
COPY proxy ./proxy
COPY embedding_service ./embedding_service
RUN pip install . && useradd --create-home --uid 10001 cachegate && mkdir -p /data /app/logs \
    && chown cachegate /data /app/logs
USER cachegate

ENV HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data \
    EMBED_CACHE_DIR=/data/onnx \
    LOG_PATH=/app/logs/requests.log
VOLUME ["/data"]
EXPOSE 3000 8001
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request,os; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('PORT', '3000'))"
CMD ["cachegate", "serve"]
