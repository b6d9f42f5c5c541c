//! Production node shells around the sans-IO cores: `orchestra-miner`, `orchestra-validator`,
//! `orchestra-mock-subnet`, `orchestra-pay` and the loopback `orchestra-devnet`.
//!
//! Shared infrastructure every binary builds on:
//! - [`config`]: SDK-style flags (`--wallet.*`, `--netuid`, `--network`, `--port`), one TOML file
//!   per node, `--mechanism.KEY=VALUE` overrides;
//! - [`metrics`]: the Prometheus registry and `/metrics`;
//! - [`auth`]: btauth/1 verification for axum (receiver, replay, freshness, validator permit)
//!   and signing for reqwest;
//! - [`subnet_client`]: calling subnet endpoints over HTTP (the wire format the mock serves).
//!
//! The binaries' cores: [`mock_subnet`] (the HTTP mock of `mocks/subnets/*.toml`), [`miner`]
//! (the miner server), [`validator`] (the tempo-driven validator with its Ledger replica and
//! API), [`pay`] (`orchestra-pay`, buying one call with x402) and [`devnet`] (Chopsticks plus
//! all of them on loopback).

pub mod auth;
pub mod config;
pub mod devnet;
pub mod metrics;
pub mod miner;
pub mod mock_subnet;
pub mod pay;
pub mod subnet_client;
pub mod validator;
