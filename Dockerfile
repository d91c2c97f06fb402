# One image for every chupacabra process; the command picks the plugin.
FROM python:3.11-slim

WORKDIR /src
COPY . /src
RUN pip install --no-cache-dir '.[postgresql]' \
    && useradd --system --home /data chupacabra \
    && mkdir -p /data && chown chupacabra /data

USER chupacabra
WORKDIR /data
# -n: stay in the foreground so the container's restart policy sees a
# crash; --pidfile=: no pid file to go stale when a container is killed.
ENTRYPOINT ["twistd", "-n", "--pidfile="]
CMD ["chupacabra", "--data", "/data"]
