# member-match API server. Runs the TypeScript sources through tsx (a runtime dependency), as `npm start`
# does in development, so no build step and no dev dependencies are needed.
#
#   docker build -t member-match .
#   docker run --init -p 8080:8080 -e DATABASE_URL=... -e REDIS_URL=... member-match
#   docker compose up            # with PostgreSQL and Redis, see docker-compose.yml
#
# The repository has no .dockerignore, so only what the server (and the operator CLI, bin/member-match.js)
# needs at run time is copied: in particular the host's node_modules must never reach the image.
FROM node:20-slim

# `npm start` runs npm -> sh -c -> tsx -> node, and a SIGTERM to npm alone does not reach the server. Run the
# container with an init (`docker run --init`, or `init: true` in compose): tini then signals the whole
# process group, so the server shuts down gracefully on `docker stop`.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    TINI_KILL_PROCESS_GROUP=1 \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false

WORKDIR /app

# Dependencies first, for layer caching: only the lockfile decides what is installed.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

# The sources tsx runs, the migrations applied at start-up, the CLI and the HRex example it reads, and the
# tooling the CLI's synth, febrl, eval and model train commands run (tools/).
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY tools ./tools
COPY migrations ./migrations
COPY fixtures ./fixtures

# Root owns the files; the server only reads them.
USER node

EXPOSE 8080

CMD ["npm", "start"]
