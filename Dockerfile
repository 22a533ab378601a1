# The Tether image: one image for workers (`tether worker`, the default) and the UI (`tether ui`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md requirements-production.lock ./
COPY tether ./tether
COPY workflows ./workflows
COPY activities ./activities
COPY policies ./policies
COPY review_ui ./review_ui
# The locked versions (hashes checked), then Tether itself without resolving anything again.
RUN pip install --require-hashes -r requirements-production.lock \
    && pip install --no-deps .

RUN useradd --create-home --uid 10001 --user-group tether
USER tether
WORKDIR /home/tether
# Made here, owned by tether, so the named volume compose mounts on it starts writable by tether.
RUN mkdir -p /home/tether/.tether
# Fail closed: outside dev, Tether refuses to start without private logins, a session secret
# and an audit key (one line, exit 2), so `docker run ... tether ui` never serves the dev logins.
ENV TETHER_ENV=production \
    TETHER_HOME=/home/tether/.tether \
    TETHER_UI_HOST=0.0.0.0

EXPOSE 8000
CMD ["tether", "worker"]
