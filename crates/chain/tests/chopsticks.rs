#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End to end against a real subtensor runtime (testfinney genesis, spec 103) run offline by
//! Chopsticks on loopback: storage written with `dev_setStorage` under keys we compute
//! ourselves, then read back and written to through `SubtensorChain` with real signed
//! extrinsics.

use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orchestra_chain::devnet::{self, KeyPart, pair};
use orchestra_chain::{
    AccountId, AxonInfo, AxonServe, Chain, ChainError, Metagraph, Neuron, StakeItem,
    SubtensorChain, SubtensorConfig, Transfer, WaitFor, WeightsContext, WeightsRejection,
    WeightsSubmission, caip2_network, check_weights,
};
use orchestra_protocol::keys::Hotkey;
use parity_scale_codec::{Decode, Encode};
use subxt::rpcs::client::{RpcClient, rpc_params};

const NETUID: u16 = 1;

/// Kills Chopsticks when the test ends, including on panic.
struct ChopsticksGuard {
    child: Child,
    log: PathBuf,
}

impl Drop for ChopsticksGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ChopsticksGuard {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

fn spec_path() -> PathBuf {
    match std::env::var_os("ORCHESTRA_CHAIN_SPEC") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/chain/raw_spec_testfinney.json"),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts Chopsticks through scripts/chopsticks.sh and waits until its port accepts
/// connections; fails with the reason (missing node/npm/package/spec) if it exits early.
fn start_chopsticks() -> (ChopsticksGuard, u16) {
    let spec = spec_path();
    assert!(
        spec.is_file(),
        "chain spec not found at {} (set ORCHESTRA_CHAIN_SPEC)",
        spec.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node is not installed: the Chopsticks test needs Node.js >= 20 and npm ({node:?})"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/chopsticks.sh");
    let port = free_port();
    let log = std::env::temp_dir().join(format!("orchestra-chopsticks-{port}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new("bash")
        .arg(&script)
        .arg(port.to_string())
        .arg(&spec)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let mut guard = ChopsticksGuard { child, log };
    // npm ci on a cold machine takes ~30 s; Chopsticks itself is ready in ~5 s.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(status) = guard.child.try_wait().unwrap() {
            panic!(
                "Chopsticks exited with {status} before serving RPC (node/npm or the pinned package missing?):\n{}",
                guard.log_tail()
            );
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (guard, port);
        }
        assert!(
            Instant::now() < deadline,
            "Chopsticks not ready after 180 s:\n{}",
            guard.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---- storage, with the key helpers of `orchestra_chain::devnet` ----

fn st(item: &str, parts: &[KeyPart], value: impl Encode) -> (String, String) {
    pair("SubtensorModule", item, parts, value)
}

fn id16(x: u16) -> KeyPart {
    KeyPart::Identity(x.encode())
}

async fn set_storage(rpc: &RpcClient, pairs: Vec<(String, String)>) {
    devnet::set_storage(rpc, pairs).await.unwrap();
}

/// Builds a block once the pool holds an extrinsic (Manual block mode).
async fn new_block_when_pending(rpc: &RpcClient) {
    for _ in 0..100 {
        let pending: Vec<serde_json::Value> = rpc
            .request("author_pendingExtrinsics", rpc_params![])
            .await
            .unwrap();
        if !pending.is_empty() {
            let _: serde_json::Value = rpc.request("dev_newBlock", rpc_params![]).await.unwrap();
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no extrinsic reached the pool");
}

struct Fixture {
    hotkeys: Vec<AccountId>,
    coldkey: AccountId,
    expected: Metagraph,
}

fn fixture(block: u64) -> Fixture {
    let pk = |uri: &str| Hotkey::from_uri(uri).unwrap().public_key();
    let hotkeys = vec![pk("//Alice"), pk("//Bob"), pk("//Charlie")];
    let coldkey = pk("//Dave");
    let bob_axon = AxonInfo {
        block: 1,
        version: 7,
        ip: u128::from(u32::from(Ipv4Addr::new(10, 9, 8, 7))),
        port: 8091,
        ip_type: 4,
        protocol: 0,
    };
    let neurons = (0..3u16)
        .map(|uid| {
            let i = usize::from(uid);
            Neuron {
                uid,
                hotkey: hotkeys[i],
                coldkey: Some(coldkey),
                stake: [5_000_000_000_000, 2_000_000_000, 1_000_000_000][i],
                validator_permit: uid == 0,
                active: true,
                axon: (uid == 1).then_some(bob_axon),
                last_update: [0, 3, 4][i],
                registered_at: [1, 2, 3][i],
                weights: if uid == 1 { vec![(0, 65_535)] } else { vec![] },
                bonds: if uid == 0 {
                    vec![(1, 1_000), (2, 500)]
                } else {
                    vec![]
                },
                incentive: [0, 40_000, 25_535][i],
                dividends: [65_535, 0, 0][i],
                consensus: [0, 30_000, 20_000][i],
                emission: [100, 200, 300][i],
            }
        })
        .collect();
    Fixture {
        hotkeys,
        coldkey,
        expected: Metagraph {
            netuid: NETUID,
            mecid: 0,
            block,
            neurons,
        },
    }
}

/// The storage that registers subnet 1 with three neurons (uid 0 a validator) and funds uid 0,
/// in the spec-103 layout (stake in `TotalHotkeyStake`, per-netuid vectors keyed by netuid).
fn subnet_storage(f: &Fixture) -> Vec<(String, String)> {
    let ns = &f.expected.neurons;
    let col = |g: fn(&Neuron) -> u16| ns.iter().map(g).collect::<Vec<u16>>();
    let mut s = vec![
        st("NetworksAdded", &[id16(NETUID)], true),
        st("TotalNetworks", &[], 1u16),
        st("SubnetworkN", &[id16(NETUID)], 3u16),
        st("Tempo", &[id16(NETUID)], 10u16),
        st("MinAllowedWeights", &[id16(NETUID)], 2u16),
        st("MaxWeightsLimit", &[id16(NETUID)], u16::MAX),
        st("WeightsVersionKey", &[id16(NETUID)], 3u64),
        st("WeightsSetRateLimit", &[id16(NETUID)], 0u64),
        st(
            "ValidatorPermit",
            &[id16(NETUID)],
            ns.iter().map(|n| n.validator_permit).collect::<Vec<_>>(),
        ),
        st(
            "Active",
            &[id16(NETUID)],
            ns.iter().map(|n| n.active).collect::<Vec<_>>(),
        ),
        st("Incentive", &[id16(NETUID)], col(|n| n.incentive)),
        st("Dividends", &[id16(NETUID)], col(|n| n.dividends)),
        st("Consensus", &[id16(NETUID)], col(|n| n.consensus)),
        st(
            "Emission",
            &[id16(NETUID)],
            ns.iter().map(|n| n.emission).collect::<Vec<u64>>(),
        ),
        st(
            "LastUpdate",
            &[id16(NETUID)],
            ns.iter().map(|n| n.last_update).collect::<Vec<u64>>(),
        ),
    ];
    for n in ns {
        let hk = || KeyPart::Blake2_128Concat(n.hotkey.encode());
        s.push(st("Keys", &[id16(NETUID), id16(n.uid)], n.hotkey));
        s.push(st("Uids", &[id16(NETUID), hk()], n.uid));
        s.push(st("IsNetworkMember", &[hk(), id16(NETUID)], true));
        s.push(st("Owner", &[hk()], f.coldkey));
        s.push(st(
            "TotalHotkeyStake",
            &[KeyPart::Identity(n.hotkey.encode())],
            n.stake,
        ));
        s.push(st(
            "BlockAtRegistration",
            &[id16(NETUID), id16(n.uid)],
            n.registered_at,
        ));
        if !n.weights.is_empty() {
            s.push(st(
                "Weights",
                &[id16(NETUID), id16(n.uid)],
                n.weights.clone(),
            ));
        }
        if !n.bonds.is_empty() {
            s.push(st("Bonds", &[id16(NETUID), id16(n.uid)], n.bonds.clone()));
        }
        if let Some(a) = n.axon {
            // AxonInfo { block, version, ip, port, ip_type, protocol, placeholder1, placeholder2 }
            let value = (
                a.block, a.version, a.ip, a.port, a.ip_type, a.protocol, 0u8, 0u8,
            );
            s.push(st("Axons", &[id16(NETUID), hk()], value));
        }
    }
    // System.Account(alice): AccountInfo { nonce, consumers, providers, sufficients: u32,
    // data: { free, reserved, misc_frozen, fee_frozen: u64 } } on this runtime.
    s.push(devnet::account_balance(
        &f.hotkeys[0],
        1_000_000_000_000_000,
    ));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subtensor_client_against_chopsticks() {
    let t0 = Instant::now();
    let (guard, port) = start_chopsticks();
    let url = format!("ws://127.0.0.1:{port}");
    let mut cfg = SubtensorConfig::new(&url);
    // The port opens slightly before the RPC answers: backoff covers the gap.
    cfg.connect_attempts = 20;
    cfg.initial_backoff = Duration::from_millis(250);
    cfg.max_backoff = Duration::from_secs(2);
    cfg.wait_for = WaitFor::Finalized;
    cfg.tx_timeout = Duration::from_secs(60);
    let alice = Hotkey::from_uri("//Alice").unwrap();
    let chain = SubtensorChain::connect(cfg, Some(&alice))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", guard.log_tail()));
    let ready = t0.elapsed();

    // The old runtime shape is detected and reported.
    let shape = chain.runtime_shape();
    assert_eq!(shape.spec_name, "node-subtensor");
    assert_eq!(shape.spec_version, 103);
    assert_eq!(shape.stake_item, StakeItem::TotalHotkeyStake);
    assert!(!shape.has_mechanisms && !shape.indexed_by_netuid_index);
    assert!(!shape.has_commit_reveal && !shape.has_commitments);
    assert_eq!(shape.subtensor_pallet_index, 8);

    let rpc = chain.rpc();
    let block = chain.current_block().await.unwrap();
    let f = fixture(block);
    set_storage(&rpc, subnet_storage(&f)).await;

    // 1. The metagraph reads back exactly what was written.
    let mg = chain.metagraph(NETUID, 0).await.unwrap();
    assert_eq!(mg, f.expected);
    let hp = chain.hyperparams(NETUID).await.unwrap();
    assert_eq!(
        (
            hp.tempo,
            hp.min_allowed_weights,
            hp.max_weights_limit,
            hp.weights_version_key
        ),
        (10, 2, u16::MAX, 3)
    );
    assert_eq!(hp.commit_reveal_enabled, None);
    assert_eq!(hp.mechanism_count, 1);
    let sched = chain.tempo_schedule(NETUID).await.unwrap();
    assert_eq!((sched.block, sched.tempo), (block, 10));
    assert_eq!((sched.next_epoch_block + u64::from(NETUID) + 1) % 11, 0);
    // A mechanism other than 0 is refused clearly on this runtime.
    assert!(matches!(
        chain.metagraph(NETUID, 1).await,
        Err(ChainError::Unsupported(_))
    ));

    // 2. A real signed set_weights from the validator, read back after the block.
    let weights = WeightsSubmission {
        netuid: NETUID,
        mecid: 0,
        uids: vec![1, 2],
        values: vec![65_535, 30_000],
        version_key: 3,
    };
    chain.precheck_weights(&weights).await.unwrap();
    let t_tx = Instant::now();
    let (outcome, ()) = tokio::join!(chain.set_weights(&weights), new_block_when_pending(&rpc));
    let outcome = outcome.unwrap_or_else(|e| panic!("set_weights: {e}\n{}", guard.log_tail()));
    let tx_time = t_tx.elapsed();
    assert!(outcome.finalized);
    assert!(
        outcome
            .events
            .iter()
            .any(|e| e.pallet == "SubtensorModule" && e.name == "WeightsSet"),
        "{:?}",
        outcome.events
    );
    let mg = chain.metagraph(NETUID, 0).await.unwrap();
    assert_eq!(mg.block, block + 1);
    // Spec 103 stores weights sum-normalised to u16::MAX, floor(w * 65535 / Σw); current
    // runtimes max-upscale instead (65535 and 30000 would be stored unchanged).
    let sum: u64 = weights.values.iter().map(|&w| u64::from(w)).sum();
    let normalised: Vec<(u16, u16)> = weights
        .uids
        .iter()
        .zip(&weights.values)
        .map(|(&u, &w)| (u, u16::try_from(u64::from(w) * 65_535 / sum).unwrap()))
        .collect();
    assert_eq!(normalised, vec![(1, 44_955), (2, 20_579)]);
    assert_eq!(mg.neurons[0].weights, normalised);
    assert_eq!(mg.neurons[0].last_update, block + 1);

    // 3. serve_axon, read back as the endpoint.
    let serve = AxonServe {
        netuid: NETUID,
        version: 42,
        ip: IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
        port: 8091,
        protocol: 0,
    };
    let (outcome, ()) = tokio::join!(chain.serve_axon(&serve), new_block_when_pending(&rpc));
    let outcome = outcome.unwrap_or_else(|e| panic!("serve_axon: {e}\n{}", guard.log_tail()));
    assert!(
        outcome.events.iter().any(|e| e.name == "AxonServed"),
        "{:?}",
        outcome.events
    );
    let mg = chain.metagraph(NETUID, 0).await.unwrap();
    let axon = mg.neurons[0].axon.expect("alice's axon");
    assert_eq!(axon.socket_addr(), Some("10.1.2.3:8091".parse().unwrap()));
    assert_eq!((axon.version, axon.ip_type, axon.block), (42, 4, block + 2));

    // 4. An invalid vector: refused by the pre-check with a reason, and by the chain with its
    // module error decoded when sent anyway.
    let bad = WeightsSubmission {
        uids: vec![1, 1],
        values: vec![10, 20],
        ..weights.clone()
    };
    let ctx = WeightsContext::from_metagraph(&mg, &hp, &f.hotkeys[0], mg.block + 1);
    assert_eq!(
        check_weights(&ctx, &bad, true),
        Err(WeightsRejection::DuplicateUid { uid: 1 })
    );
    match chain.set_weights_checked(&bad).await {
        Err(ChainError::Rejected(WeightsRejection::DuplicateUid { uid: 1 })) => {}
        other => panic!("pre-check should refuse duplicates: {other:?}"),
    }
    let (sent, ()) = tokio::join!(chain.set_weights(&bad), new_block_when_pending(&rpc));
    let err = sent.expect_err("the chain must refuse duplicate uids");
    let module = err
        .module_error()
        .unwrap_or_else(|| panic!("not a module error: {err}"));
    assert_eq!(
        (module.pallet.as_str(), module.name.as_str()),
        ("SubtensorModule", "DuplicateUids")
    );
    println!("chain refused as expected: {err}");

    // Low version key: pre-check names the rule, the chain agrees.
    let old_version = WeightsSubmission {
        version_key: 2,
        ..weights.clone()
    };
    assert!(matches!(
        check_weights(&ctx, &old_version, true),
        Err(WeightsRejection::VersionKeyTooLow {
            got: 2,
            required: 3
        })
    ));

    // Calls this runtime lacks fail before signing, naming the call.
    match chain
        .commit_weights(&orchestra_chain::WeightsCommit {
            netuid: NETUID,
            mecid: 0,
            hash: [0; 32],
        })
        .await
    {
        Err(ChainError::MissingCall {
            call: "commit_weights",
            spec_version: 103,
            ..
        }) => {}
        other => panic!("expected MissingCall commit_weights: {other:?}"),
    }
    match chain.anchor_commitment(NETUID, b"ledger head").await {
        Err(ChainError::MissingCall {
            pallet: "Commitments",
            call: "set_commitment",
            ..
        }) => {}
        other => panic!("expected MissingCall Commitments.set_commitment: {other:?}"),
    }

    let report = orchestra_chain::subtensor::info_report(&chain, Some(NETUID), 0)
        .await
        .unwrap();
    assert!(
        report.contains("spec 103") && report.contains("TotalHotkeyStake"),
        "{report}"
    );
    // Spec 103 predates every feature `info` lists: the legacy scheduler, no mechanisms.
    for line in [
        "stateful epochs             no",
        "mechanisms                  no",
        "trigger_epoch               no",
        "activity cutoff factor      no",
        "legacy scheduler",
        "commit-reveal absent",
    ] {
        assert!(report.contains(line), "{line:?} in\n{report}");
    }
    println!("{report}");
    println!(
        "timings: chopsticks ready + connect {ready:?}, set_weights round trip {tx_time:?}, total {:?}",
        t0.elapsed()
    );
    drop(guard);
}

/// Free balance of `who` in rao, read from `System.Account` (0 for an account that does not
/// exist), in the layout `devnet::account_balance` writes.
async fn free_balance(rpc: &RpcClient, who: &AccountId) -> u64 {
    let key = devnet::storage_key(
        "System",
        "Account",
        &[KeyPart::Blake2_128Concat(who.encode())],
    );
    let raw: Option<String> = rpc
        .request(
            "state_getStorage",
            rpc_params![format!("0x{}", hex::encode(key))],
        )
        .await
        .unwrap();
    let Some(raw) = raw else { return 0 };
    let bytes = hex::decode(raw.trim_start_matches("0x")).unwrap();
    // AccountInfo { nonce, consumers, providers, sufficients: u32, data: { free: u64, … } }
    let (_, _, _, _, free) = <(u32, u32, u32, u32, u64)>::decode(&mut &bytes[..]).unwrap();
    free
}

/// x402 pay-per-call on a real runtime: Alice pays Bob with `transfer_keep_alive`, and the
/// receipt's block is read back with `transfer_at` as a payee would check it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tao_transfer_and_lookup_against_chopsticks() {
    const AMOUNT: u64 = 123_456_789;
    const ALICE_FUNDS: u64 = 1_000_000_000_000_000;
    let t0 = Instant::now();
    let (guard, port) = start_chopsticks();
    let mut cfg = SubtensorConfig::new(format!("ws://127.0.0.1:{port}"));
    cfg.connect_attempts = 20;
    cfg.initial_backoff = Duration::from_millis(250);
    cfg.max_backoff = Duration::from_secs(2);
    cfg.wait_for = WaitFor::Finalized;
    cfg.tx_timeout = Duration::from_secs(60);
    let alice_key = Hotkey::from_uri("//Alice").unwrap();
    let alice = alice_key.public_key();
    let bob = Hotkey::from_uri("//Bob").unwrap().public_key();
    let chain = SubtensorChain::connect(cfg, Some(&alice_key))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", guard.log_tail()));
    let rpc = chain.rpc();

    // The CAIP-2 id is the genesis hash the node reports, cut to 16 bytes.
    let genesis: String = rpc
        .request("chain_getBlockHash", rpc_params![0u32])
        .await
        .unwrap();
    let genesis = hex::decode(genesis.trim_start_matches("0x")).unwrap();
    assert_eq!(chain.genesis_hash().as_slice(), genesis.as_slice());
    let network = caip2_network(&chain.genesis_hash());
    assert_eq!(
        network,
        format!("bittensor:{}", hex::encode(&genesis[..16]))
    );

    set_storage(&rpc, vec![devnet::account_balance(&alice, ALICE_FUNDS)]).await;
    assert_eq!(free_balance(&rpc, &alice).await, ALICE_FUNDS);
    let bob_before = free_balance(&rpc, &bob).await;
    let block = chain.current_block().await.unwrap();

    // 1. The transfer, waited for until finalized.
    let t_tx = Instant::now();
    let (receipt, ()) = tokio::join!(chain.transfer(&bob, AMOUNT), new_block_when_pending(&rpc));
    let receipt = receipt.unwrap_or_else(|e| panic!("transfer: {e}\n{}", guard.log_tail()));
    let tx_time = t_tx.elapsed();
    assert!(receipt.finalized, "{receipt:?}");
    assert_eq!(receipt.block_number, block + 1);
    let head: String = rpc
        .request("chain_getBlockHash", rpc_params![receipt.block_number])
        .await
        .unwrap();
    assert_eq!(head, format!("0x{}", hex::encode(receipt.block_hash)));

    // Keep-alive: Alice paid the amount and a fee and is still funded; Bob got exactly the amount.
    let alice_after = free_balance(&rpc, &alice).await;
    let fee = ALICE_FUNDS - AMOUNT - alice_after;
    assert!(
        alice_after > 0 && fee > 0 && fee < 1_000_000_000,
        "fee {fee}"
    );
    assert_eq!(free_balance(&rpc, &bob).await, bob_before + AMOUNT);

    // 2. The payee's check: exactly this transfer, succeeded, finalized.
    let lookup = chain
        .transfer_at(receipt.block_hash, receipt.extrinsic_index)
        .await
        .unwrap();
    assert_eq!(
        lookup.transfers,
        vec![Transfer {
            from: alice,
            to: bob,
            amount_rao: AMOUNT
        }]
    );
    assert!(lookup.succeeded && lookup.finalized, "{lookup:?}");
    assert_eq!(lookup.block_number, receipt.block_number);
    let head = chain.current_block().await.unwrap();
    assert!(
        (lookup.block_number..=head).contains(&lookup.finalized_head),
        "{lookup:?}, head {head}"
    );

    // An index past the transfer has no events: an empty lookup. The inherent before it
    // (timestamp) succeeded but moved no TAO.
    let past = chain
        .transfer_at(receipt.block_hash, receipt.extrinsic_index + 1)
        .await
        .unwrap();
    assert!(past.transfers.is_empty() && !past.succeeded, "{past:?}");
    assert!(past.finalized);
    assert!(receipt.extrinsic_index > 0, "{receipt:?}");
    let inherent = chain.transfer_at(receipt.block_hash, 0).await.unwrap();
    assert!(
        inherent.transfers.is_empty() && inherent.succeeded,
        "{inherent:?}"
    );

    // 3. More than Alice has left: included, refused by Balances, and read back as a failed
    // extrinsic that moved nothing.
    let (sent, ()) = tokio::join!(
        chain.transfer(&bob, alice_after),
        new_block_when_pending(&rpc)
    );
    let err = sent.expect_err("a transfer of the whole balance must fail");
    let module = err
        .module_error()
        .unwrap_or_else(|| panic!("not a module error: {err}"));
    assert_eq!(module.pallet, "Balances", "{err}");
    println!("chain refused as expected: {err}");
    let ChainError::Dispatch { block_hash, .. } = err else {
        unreachable!()
    };
    let failed = chain
        .transfer_at(block_hash, receipt.extrinsic_index)
        .await
        .unwrap();
    assert!(
        failed.transfers.is_empty() && !failed.succeeded,
        "{failed:?}"
    );
    assert!(failed.finalized);
    assert_eq!(failed.block_number, receipt.block_number + 1);
    assert!(free_balance(&rpc, &alice).await > 0);
    assert_eq!(free_balance(&rpc, &bob).await, bob_before + AMOUNT);

    // 4. A block the node never saw is a clear error naming the hash. Last: Chopsticks on a
    // genesis spec answers any unknown hash with the genesis header (which the client refuses,
    // as its hash differs) and files that hash as block 0.
    match chain.transfer_at([0xab; 32], 0).await {
        Err(e @ ChainError::UnknownBlock { block_hash }) => {
            assert_eq!(block_hash, [0xab; 32]);
            assert!(e.to_string().contains(&"ab".repeat(32)), "{e}");
        }
        other => panic!("expected UnknownBlock: {other:?}"),
    }

    println!(
        "network {network}; transfer round trip {tx_time:?}, fee {fee} rao, total {:?}",
        t0.elapsed()
    );
    drop(guard);
}
