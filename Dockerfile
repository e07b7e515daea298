# TollGuard: the decision core behind drachtio-server (or its own embedded SIP proxy).
#
#   docker build -t tollguard .
#   docker run -v "$PWD/rules:/app/rules:ro" tollguard serve --rules /app/rules --drachtio drachtio:9022 --secret cymru
#
# Stage 1 builds with the dev dependencies (TypeScript); stage 2 runs on a slim Node 20 image
# with the production dependencies only, as the unprivileged "node" user.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary matches, and npm ci builds the
# native UDP addon (native/udp_batch.c): give them a toolchain here, so the runtime image needs none.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json binding.gyp ./
COPY native/ native/
COPY src/ src/
# npm ci runs "install", which builds build/Release/udp_batch.node (native/install.js), and
# "prepare", which builds dist/ with tsc. install.js lets a failed native build pass, for machines
# without a compiler; this stage has one, so a missing addon here is a bug: show node-gyp's log, stop.
RUN npm ci \
  && { test -f build/Release/udp_batch.node || { cat build/udp_batch-install.log; exit 1; }; } \
  && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules/ node_modules/
COPY --from=build /app/dist/ dist/
# The UDP addon, found by dist/sip/udp-batch.js at <package root>/build/Release/.
COPY --from=build /app/build/Release/udp_batch.node build/Release/udp_batch.node
# Defaults; mount your own rules over /app/rules (read-only is fine: the guard only reads them).
COPY rules/ rules/
USER node
VOLUME ["/app/rules"]
# Outbound drachtio connections (drachtio.listen) and the embedded proxy's SIP port.
EXPOSE 4000/tcp 5060/udp 5060/tcp
# Healthy = the rule files on the volume validate. A broken edit keeps the guard running on the
# last good rules (it refuses to load them), and this check turns the container unhealthy so the
# admin sees it; `docker logs` has the file:line errors.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=2 \
  CMD ["node", "dist/cli.js", "check", "--rules", "/app/rules"]
ENTRYPOINT ["node", "--single-threaded-gc", "dist/cli.js"]
CMD ["serve", "--rules", "/app/rules"]
