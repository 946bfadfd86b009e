# syntax=docker/dockerfile:1
# assist-bot in a slim image: built in one stage, run from another that has no build
# tools, as a non-root user. `docker run … assist-bot-image` runs the bot; any other
# subcommand works too (`… check`, `… manifest`).

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install the pinned versions into a virtualenv ---------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY constraints.txt pyproject.toml README.md LICENSE ./
COPY src ./src
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-compile -c constraints.txt . \
 && /opt/venv/bin/pip uninstall -y pip

# --- run: the virtualenv alone, as an unprivileged user ---------------------------------------
FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/assist assist
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ASSIST_BOT_METRICS_PORT=9090
USER 10001:10001
WORKDIR /home/assist
# 3000: Slack's requests in HTTP mode; 9090: /metrics and /healthz in either mode.
EXPOSE 3000 9090
# /healthz on the metrics port works in Socket Mode too (there is no other HTTP server then).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('ASSIST_BOT_METRICS_PORT', '9090') + '/healthz', timeout=4)"]
ENTRYPOINT ["assist-bot"]
CMD ["run"]
