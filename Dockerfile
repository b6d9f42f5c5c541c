# Orchestra node binaries: orchestra-validator, orchestra-miner, orchestra-mock-subnet,
# orchestra-devnet (from crates/node) and orchestra-ledger (key management, standalone Ledger).
#
#   docker build -t orchestra .
#   docker run --rm orchestra orchestra-validator --help
#
# Not built in CI (no Docker on the build machine); see docs/operators.md.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p orchestra-node -p orchestra-ledger \
 && mkdir -p /out \
 && cp target/release/orchestra-validator target/release/orchestra-miner \
       target/release/orchestra-mock-subnet target/release/orchestra-devnet \
       target/release/orchestra-ledger /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates sqlite3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 orchestra \
 && useradd --system --uid 10001 --gid orchestra --create-home --home-dir /home/orchestra orchestra \
 && mkdir -p /data /opt/orchestra \
 && chown orchestra:orchestra /data
COPY --from=build /out/ /usr/local/bin/
# Mock subnets and objective templates (the binaries embed the templates; the files are for
# seeding Ledgers, devnets and reference).
COPY mocks /opt/orchestra/mocks
WORKDIR /opt/orchestra
USER orchestra
VOLUME ["/data"]
EXPOSE 8091 8092 8080
CMD ["orchestra-validator", "--help"]
