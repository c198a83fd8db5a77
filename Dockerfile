# IIIF server on Debian's libvips (which reads and writes JPEG 2000).
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends libvips42 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY iiif_server ./iiif_server
# The bundled libvips is dropped so pyvips loads the system one.
RUN pip install --no-cache-dir . && pip uninstall -y pyvips-binary

RUN useradd --system --uid 10001 --home-dir /data iiif \
    && mkdir -p /data /images \
    && chown iiif /data /images
USER iiif

# /data holds the catalogue, the signing key and the audit log: mount a named volume there
# (`-v iiif-data:/data`); no VOLUME here, so nothing lands in an anonymous volume that a re-created
# container would lose. The access log goes to standard error (`docker logs`).
ENV IIIF_SERVER_HOST=0.0.0.0 \
    IIIF_SERVER_PORT=8000 \
    IIIF_SERVER_DATA_DIR=/data \
    IIIF_SERVER_ACCESS_LOG=-
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"
CMD ["iiif-server", "serve"]
