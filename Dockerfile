# Jobs server image: the compiled server and CLI on Node 20, nothing else.
#
# No PostgreSQL inside. The image needs DATABASE_URL (postgres://user:password@host:5432/db).
# Without it the server tries to start its embedded cluster (initdb/pg_ctl), whose binaries this
# image does not ship, and exits with an error. The server applies pending migrations at start.
#
# Artifacts: set STORAGE_URL=gs://bucket/prefix (plus GCS_API_ENDPOINT for an emulator). Left
# unset, artifacts go to file://$DATA_DIR/artifacts (/data/artifacts), which is lost with the
# container unless a volume is mounted on /data.
#
#   docker build -t jobs-server .
#   docker run -p 8080:8080 -e DATABASE_URL=postgres://... -e STORAGE_URL=gs://... jobs-server
#   docker exec <container> node dist/src/cli.js quickstart    # operator CLI, same config
#
# Alpine: every runtime dependency is plain JavaScript (pg without pg-native), so musl is no
# concern, and the base is ~70 MB smaller than bookworm-slim.

ARG NODE_IMAGE=node:20-alpine

# --- build: all dependencies, TypeScript -> dist/ ----------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Only tsc runs in this stage: install scripts (esbuild's binary check, ...) are not needed.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
RUN npm run build

# --- runtime: production dependencies and dist/ only -------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# /data is DATA_DIR: it must be writable by the unprivileged user (file:// artifact store).
RUN npm ci --omit=dev --no-audit --no-fund \
  && npm cache clean --force \
  && mkdir -p /data \
  && chown node:node /data
# dist/src/db/migrator.js loads ../../migrations, i.e. dist/migrations.
COPY --from=build /app/dist ./dist

# Application files stay root-owned and read-only for the process; it runs as the image's
# unprivileged `node` user (uid 1000).
USER node
ENV HOST=0.0.0.0 \
    PORT=8080 \
    DATA_DIR=/data
EXPOSE 8080

# No curl/wget needed: Node 20 has fetch. /healthz is served under BASE_PATH.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + (process.env.BASE_PATH || '') + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# Exec form: node is PID 1 and receives SIGTERM itself (server.ts closes the app and the pool).
# Run with `--init` (compose: `init: true`) to have a reaper in front of it.
CMD ["node", "dist/src/server.js"]
