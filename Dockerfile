# member-match API server on Node 24 LTS (the supported runtime: package.json "engines", docs/runtime.md).
#
#   docker build -t member-match .
#   docker run -p 8080:8080 -e DATABASE_URL=... -e REDIS_URL=... member-match
#   docker compose up            # with PostgreSQL and Redis, see docker-compose.yml
#
# Two stages: the first compiles the TypeScript (it needs the dev dependencies), the second holds the production
# dependencies and the compiled server. The repository has no .dockerignore, so only what each stage needs is
# copied: in particular the host's node_modules must never reach the image.

FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY tools ./tools
COPY migrations ./migrations
RUN npm run build

FROM node:24-slim

# The API on PORT; the Prometheus metrics on METRICS_PORT (not published by default: scrape it on the container
# network, never through the proxy in front of the API; METRICS_PORT=off serves none).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    METRICS_PORT=9464 \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false

WORKDIR /app

# Dependencies first, for layer caching: only the lockfile decides what is installed.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit && npm cache clean --force

# The compiled server (dist/, with the compiled migrations it applies at start-up); the Cedar schema and policies
# it reads from src/policy/cedar; the operator CLI (bin/member-match.js runs the TypeScript sources through tsx, a
# runtime dependency), the HRex example and the tooling it reads (fixtures/, tools/).
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY tools ./tools
COPY migrations ./migrations
COPY fixtures ./fixtures
COPY --from=build /app/dist ./dist

# Root owns the files; the server only reads them.
USER node

EXPOSE 8080 9464

# Node itself is the container's main process (no npm, no shell in between), so `docker stop`'s SIGTERM reaches
# the server: it stops accepting connections, finishes in-flight requests and jobs, closes its pools and exits.
# No init is needed for that (`--init` / compose's `init: true` still reaps the CLI's child processes).
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/main.js"]
