# syntax=docker/dockerfile:1

# ---- build: compile TypeScript with the dev dependencies ------------------------------------
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# `npm ci` would run the `prepare` script (tsc) before the sources are copied: skip it here and
# build explicitly below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build

# ---- runtime: production dependencies and the compiled output only --------------------------
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` needs typescript, which --omit=dev leaves out. No production
# dependency needs its install script (anvil's platform binary comes as an optional package).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
USER node
EXPOSE 3000
# `all` runs api, subscriber and worker in one process; fly.toml runs each role on its own.
CMD ["node", "bin/blockhook.js", "all"]
