FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY simulator ./simulator
COPY consumers ./consumers
COPY schemas ./schemas
RUN pip install --no-cache-dir . \
 && txnsim config show >/dev/null
USER nobody
ENV XDG_CACHE_HOME=/tmp/cache
ENTRYPOINT []
CMD ["txnsim", "--help"]
