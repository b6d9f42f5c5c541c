//! A whole Orchestra network on loopback: Chopsticks running the subtensor test runtime, a
//! subnet created by writing its storage, mock subnets, two miners (one honest, one
//! fabricating) and one validator — the real binaries as child processes.
//!
//! Chain: `scripts/chopsticks.sh` starts Chopsticks offline on the raw chain spec (env
//! `ORCHESTRA_CHAIN_SPEC`), in manual block mode; [`Devnet`] writes the subnet with
//! `dev_setStorage` (uid 0 `//Alice` the validator with a permit and stake, uid 1 `//Bob` the
//! honest miner, uid 2 `//Charlie` the fabricator, their axons on 127.0.0.1), and a block
//! producer calls `dev_newBlock` every `block_ms`. Everything else talks to that chain through
//! the ordinary client: the miners check validator permits in the metagraph, the validator finds
//! the miners' axons there and sets weights with signed extrinsics.
//!
//! Children write their logs to `<work_dir>/<name>.log` and are killed when the [`Devnet`] (or,
//! during start-up, their [`Proc`]) is dropped — so on Ctrl-C in `orchestra-devnet` too. A
//! devnet killed with SIGKILL cannot clean up: its children then keep running until killed by
//! hand.

use orchestra_chain::devnet::{DevNeuron, DevSubnet, new_block, set_storage, subnet_storage};
use orchestra_chain::{AxonInfo, Chain, SubtensorChain, SubtensorConfig, WaitFor};
use orchestra_http::PARENT_PID_ENV;
use orchestra_protocol::Hotkey;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the devnet could not start.
#[derive(Debug, thiserror::Error)]
#[error("devnet: {0}")]
pub struct DevnetError(pub String);

fn err(msg: impl Into<String>) -> DevnetError {
    DevnetError(msg.into())
}

/// The node binaries the devnet runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `orchestra-validator`.
    pub validator: PathBuf,
    /// `orchestra-miner`.
    pub miner: PathBuf,
    /// `orchestra-mock-subnet`.
    pub mock_subnet: PathBuf,
}

impl Binaries {
    /// The binaries next to the running executable (how `cargo build` lays them out).
    pub fn next_to_current_exe() -> Result<Binaries, DevnetError> {
        let exe = std::env::current_exe().map_err(|e| err(format!("current exe: {e}")))?;
        let dir = exe
            .parent()
            .ok_or_else(|| err("the executable has no directory"))?;
        let b = |n: &str| dir.join(format!("{n}{}", std::env::consts::EXE_SUFFIX));
        Ok(Binaries {
            validator: b("orchestra-validator"),
            miner: b("orchestra-miner"),
            mock_subnet: b("orchestra-mock-subnet"),
        })
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// The binaries.
    pub binaries: Binaries,
    /// Repository root (for `scripts/chopsticks.sh`, `mocks/subnets`, `mocks/objectives`).
    pub repo: PathBuf,
    /// Raw chain spec Chopsticks runs.
    pub chain_spec: PathBuf,
    /// Logs and the validator's state go here.
    pub work_dir: PathBuf,
    /// The subnet.
    pub netuid: u16,
    /// Its tempo, blocks.
    pub tempo: u16,
    /// Block production period.
    pub block_ms: u64,
    /// Blocks between the validator's challenge rounds.
    pub challenge_every_blocks: u64,
    /// Miner deadline per challenge, ms.
    pub deadline_ms: u64,
    /// Multiplier on the mock subnets' modelled latencies (small = fast devnet).
    pub latency_scale: f64,
    /// Extra flags for the validator (e.g. `--mechanism.audit_rate=0.5`).
    pub validator_args: Vec<String>,
}

impl DevnetConfig {
    /// Defaults for a devnet of `repo` writing to `work_dir`: tempo 10, a block every 500 ms,
    /// a challenge round every 2 blocks, mock latencies × 0.05.
    pub fn new(binaries: Binaries, repo: PathBuf, work_dir: PathBuf) -> DevnetConfig {
        let chain_spec = match std::env::var_os("ORCHESTRA_CHAIN_SPEC") {
            Some(p) => PathBuf::from(p),
            None => repo.join("../shared/chain/raw_spec_testfinney.json"),
        };
        DevnetConfig {
            binaries,
            repo,
            chain_spec,
            work_dir,
            netuid: 1,
            tempo: 10,
            block_ms: 500,
            challenge_every_blocks: 2,
            deadline_ms: 10_000,
            latency_scale: 0.05,
            validator_args: Vec::new(),
        }
    }
}

/// One child process.
#[derive(Debug)]
pub struct Proc {
    /// Name (also its log file's).
    pub name: String,
    /// The process.
    pub child: Child,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
}

impl Proc {
    /// The last `n` lines of its log.
    pub fn log_tail(&self, n: usize) -> String {
        log_tail(&self.log, n)
    }

    /// Kill it (SIGKILL) and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `n` lines of the file at `path`.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A miner of the devnet.
#[derive(Debug, Clone)]
pub struct MinerInfo {
    /// Uid on the subnet.
    pub uid: u16,
    /// Hotkey ss58.
    pub hotkey: String,
    /// Dev URI of the hotkey.
    pub uri: String,
    /// Base URL.
    pub url: String,
    /// Strategy (`honest`, `fabricator`).
    pub strategy: String,
}

/// A running devnet; dropping it stops everything.
pub struct Devnet {
    /// Settings it was started with.
    pub config: DevnetConfig,
    /// Chain WebSocket URL.
    pub chain_url: String,
    /// A read-only chain client.
    pub chain: Arc<SubtensorChain>,
    /// The multi-subnet mock server's base URL.
    pub mock_url: String,
    /// The miners.
    pub miners: Vec<MinerInfo>,
    /// The validator's base URL.
    pub validator_url: String,
    /// The validator's hotkey ss58.
    pub validator_hotkey: String,
    /// The validator's state directory.
    pub validator_state: PathBuf,
    /// The validator's port.
    validator_port: u16,
    chopsticks: Proc,
    mock: Proc,
    miner_procs: Vec<Proc>,
    validator: Option<Proc>,
    producer: tokio::task::JoinHandle<()>,
    started: Instant,
}

impl std::fmt::Debug for Devnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devnet")
            .field("chain_url", &self.chain_url)
            .field("validator_url", &self.validator_url)
            .finish_non_exhaustive()
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> Result<u16, DevnetError> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| err(format!("no free port: {e}")))
}

fn spawn(
    name: &str,
    program: &Path,
    args: &[String],
    work_dir: &Path,
) -> Result<Proc, DevnetError> {
    if !program.is_file() {
        return Err(err(format!(
            "{} not found (build it: cargo build -p orchestra-node)",
            program.display()
        )));
    }
    let mut cmd = Command::new(program);
    cmd.args(args);
    spawn_command(name, cmd, work_dir)
}

/// Start `cmd` with stdout and stderr going to `<work_dir>/<name>.log`, tied to this process: it
/// stops by itself if this process dies without stopping it (see [`PARENT_PID_ENV`]).
fn spawn_command(name: &str, mut cmd: Command, work_dir: &Path) -> Result<Proc, DevnetError> {
    cmd.env(PARENT_PID_ENV, std::process::id().to_string());
    let log = work_dir.join(format!("{name}.log"));
    let out =
        std::fs::File::create(&log).map_err(|e| err(format!("creating {}: {e}", log.display())))?;
    let out2 = out
        .try_clone()
        .map_err(|e| err(format!("log file {}: {e}", log.display())))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(out2)
        .spawn()
        .map_err(|e| err(format!("cannot start {name}: {e}")))?;
    tracing::info!(name, pid = child.id(), log = %log.display(), "started");
    Ok(Proc {
        name: name.to_string(),
        child,
        log,
    })
}

/// Wait until `port` accepts connections, failing with the log tail if `proc` exits first.
pub async fn wait_port(proc: &mut Proc, port: u16, timeout: Duration) -> Result<(), DevnetError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = proc.child.try_wait() {
            return Err(err(format!(
                "{} exited with {status} before listening on {port}:\n{}",
                proc.name,
                proc.log_tail(30)
            )));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(err(format!(
                "{} not listening on {port} after {timeout:?}:\n{}",
                proc.name,
                proc.log_tail(30)
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn pk(uri: &str) -> Result<Hotkey, DevnetError> {
    Hotkey::from_uri(uri).map_err(|e| err(format!("{uri}: {e}")))
}

fn axon(port: u16, block: u64) -> AxonInfo {
    AxonInfo {
        block,
        version: 1,
        ip: u128::from(u32::from(Ipv4Addr::LOCALHOST)),
        port,
        ip_type: 4,
        protocol: 0,
    }
}

impl Devnet {
    /// Start everything and return once every service listens.
    pub async fn start(config: DevnetConfig) -> Result<Devnet, DevnetError> {
        let started = Instant::now();
        std::fs::create_dir_all(&config.work_dir)
            .map_err(|e| err(format!("creating {}: {e}", config.work_dir.display())))?;
        // 1. Chopsticks.
        let node = Command::new("node").arg("--version").output();
        if !node.as_ref().is_ok_and(|o| o.status.success()) {
            return Err(err(
                "Node.js is not installed: the devnet runs Chopsticks, which needs Node.js >= 20 \
                 and npm (e.g. `apt-get install nodejs npm`)",
            ));
        }
        if !config.chain_spec.is_file() {
            return Err(err(format!(
                "chain spec not found at {} (set ORCHESTRA_CHAIN_SPEC)",
                config.chain_spec.display()
            )));
        }
        let script = config.repo.join("scripts/chopsticks.sh");
        let cport = free_port()?;
        let mut cmd = Command::new("bash");
        cmd.arg(&script)
            .arg(cport.to_string())
            .arg(&config.chain_spec);
        let mut chopsticks = spawn_command("chopsticks", cmd, &config.work_dir)?;
        wait_port(&mut chopsticks, cport, Duration::from_secs(180)).await?;
        let chain_url = format!("ws://127.0.0.1:{cport}");
        let mut ccfg = SubtensorConfig::new(&chain_url);
        ccfg.connect_attempts = 20;
        ccfg.initial_backoff = Duration::from_millis(250);
        ccfg.max_backoff = Duration::from_secs(2);
        ccfg.wait_for = WaitFor::Finalized;
        let chain = SubtensorChain::connect(ccfg, None).await.map_err(|e| {
            err(format!(
                "connecting to Chopsticks: {e}\n{}",
                chopsticks.log_tail(30)
            ))
        })?;
        let rpc = chain.rpc();
        let block = chain
            .current_block()
            .await
            .map_err(|e| err(format!("reading the block: {e}")))?;

        // 2. The subnet: ports first, since axons are written into storage.
        let mock_port = free_port()?;
        let validator_port = free_port()?;
        let miner_ports = [free_port()?, free_port()?];
        let alice = pk("//Alice")?;
        let dave = pk("//Dave")?.public_key();
        let miners = [("//Bob", "honest"), ("//Charlie", "fabricator")];
        let mut neurons = vec![DevNeuron {
            hotkey: alice.public_key(),
            coldkey: dave,
            stake: 5_000_000_000_000,
            validator_permit: true,
            axon: None,
            free_balance: 1_000_000_000_000_000,
        }];
        let mut infos = Vec::new();
        for (i, (uri, strategy)) in miners.iter().enumerate() {
            let key = pk(uri)?;
            neurons.push(DevNeuron {
                hotkey: key.public_key(),
                coldkey: dave,
                stake: 1_000_000_000,
                validator_permit: false,
                axon: Some(axon(miner_ports[i], block)),
                free_balance: 0,
            });
            infos.push(MinerInfo {
                uid: u16::try_from(i + 1).unwrap_or(u16::MAX),
                hotkey: key.ss58(),
                uri: (*uri).to_string(),
                url: format!("http://127.0.0.1:{}", miner_ports[i]),
                strategy: (*strategy).to_string(),
            });
        }
        let subnet = DevSubnet {
            netuid: config.netuid,
            tempo: config.tempo,
            min_allowed_weights: 1,
            weights_version_key: 0,
            weights_rate_limit: 0,
            registered_at: block,
            neurons,
        };
        set_storage(&rpc, subnet_storage(&subnet, chain.shape().stake_item))
            .await
            .map_err(|e| err(e.to_string()))?;
        new_block(&rpc).await.map_err(|e| err(e.to_string()))?;
        tracing::info!(
            netuid = config.netuid,
            tempo = config.tempo,
            "subnet created on Chopsticks"
        );

        // 3. Mock subnets (all of mocks/subnets on one server, at /sn/<netuid>).
        let mocks_dir = config.repo.join("mocks/subnets");
        let mut mock = spawn(
            "mock-subnet",
            &config.binaries.mock_subnet,
            &[
                "--mocks".into(),
                mocks_dir.display().to_string(),
                "--port".into(),
                mock_port.to_string(),
                "--seed".into(),
                "1".into(),
                "--latency-scale".into(),
                config.latency_scale.to_string(),
            ],
            &config.work_dir,
        )?;
        wait_port(&mut mock, mock_port, Duration::from_secs(30)).await?;
        let mock_url = format!("http://127.0.0.1:{mock_port}");

        // 4. Blocks, from now on.
        let producer = {
            let rpc = chain.rpc();
            let every = Duration::from_millis(config.block_ms.max(50));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if let Err(e) = new_block(&rpc).await {
                        tracing::warn!(error = %e, "producing a block failed");
                    }
                }
            })
        };

        let validator_state = config.work_dir.join("validator");
        let mut devnet = Devnet {
            chain_url,
            chain: Arc::new(chain),
            mock_url,
            miners: infos,
            validator_url: format!("http://127.0.0.1:{validator_port}"),
            validator_hotkey: alice.ss58(),
            validator_state,
            validator_port,
            chopsticks,
            mock,
            miner_procs: Vec::new(),
            validator: None,
            producer,
            started,
            config,
        };
        // 5. The validator first (the miners read their Ledger view from it), then the miners.
        devnet.start_validator().await?;
        for (i, m) in devnet.miners.clone().iter().enumerate() {
            let args = devnet.miner_args(m, miner_ports[i], i as u64);
            let mut p = spawn(
                &format!("miner-{}", m.strategy),
                &devnet.config.binaries.miner,
                &args,
                &devnet.config.work_dir,
            )?;
            wait_port(&mut p, miner_ports[i], Duration::from_secs(60)).await?;
            devnet.miner_procs.push(p);
        }
        tracing::info!(elapsed = ?devnet.started.elapsed(), "devnet up");
        Ok(devnet)
    }

    fn miner_args(&self, m: &MinerInfo, port: u16, seed: u64) -> Vec<String> {
        let mut a: Vec<String> = [
            "--wallet.hotkey",
            &m.uri,
            "--netuid",
            &self.config.netuid.to_string(),
            "--network",
            &self.chain_url,
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--subnets-url",
            &self.mock_url,
            "--ledger-url",
            &self.validator_url,
            "--ledger-hotkey",
            &self.validator_hotkey,
            "--ledger-refresh-s",
            "2",
            "--strategy",
            &m.strategy,
            "--seed",
            &(seed + 7).to_string(),
            "--permit-refresh-s",
            "5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if m.strategy == "fabricator" {
            // Invent every sub-response: the clearest cheat for auditors to catch.
            a.extend(["--strategy-param".to_string(), "steps=\"all\"".to_string()]);
        }
        a
    }

    /// The validator's command-line arguments.
    pub fn validator_args(&self) -> Vec<String> {
        let c = &self.config;
        let mut a: Vec<String> = [
            "--wallet.hotkey",
            "//Alice",
            "--netuid",
            &c.netuid.to_string(),
            "--network",
            &self.chain_url,
            "--host",
            "127.0.0.1",
            "--port",
            &self.validator_port.to_string(),
            "--state.dir",
            &self.validator_state.display().to_string(),
            "--ledger.seed",
            &c.repo.join("mocks/subnets").display().to_string(),
            "--objectives",
            &c.repo.join("mocks/objectives").display().to_string(),
            "--subnets-url",
            &self.mock_url,
            "--challenge.every-blocks",
            &c.challenge_every_blocks.to_string(),
            "--challenge.deadline-ms",
            &c.deadline_ms.to_string(),
            "--chain.poll-ms",
            &(c.block_ms / 4).max(50).to_string(),
            "--anchor.every-blocks",
            &(u64::from(c.tempo) * 2).to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(c.validator_args.iter().cloned());
        a
    }

    /// Start (or restart) the validator and wait until its API listens.
    pub async fn start_validator(&mut self) -> Result<(), DevnetError> {
        if let Some(mut old) = self.validator.take() {
            old.kill();
        }
        let name = if self.validator_log_exists() {
            format!("validator-{}", self.started.elapsed().as_millis())
        } else {
            "validator".to_string()
        };
        let mut p = spawn(
            &name,
            &self.config.binaries.validator,
            &self.validator_args(),
            &self.config.work_dir,
        )?;
        wait_port(&mut p, self.validator_port, Duration::from_secs(60)).await?;
        self.validator = Some(p);
        Ok(())
    }

    fn validator_log_exists(&self) -> bool {
        self.config.work_dir.join("validator.log").exists()
    }

    /// Kill the validator with SIGKILL (no chance to flush or clean up).
    pub fn kill_validator(&mut self) {
        if let Some(mut p) = self.validator.take() {
            p.kill();
        }
    }

    /// Kill miner `uid` with SIGKILL, as a crash would; its neuron stays on chain.
    pub fn kill_miner(&mut self, uid: u16) {
        if let Some(i) = self.miners.iter().position(|m| m.uid == uid)
            && let Some(p) = self.miner_procs.get_mut(i)
        {
            p.kill();
        }
    }

    /// The validator process, if running.
    pub fn validator_proc(&mut self) -> Option<&mut Proc> {
        self.validator.as_mut()
    }

    /// The last lines of every child's log (for failure messages).
    pub fn logs(&self, n: usize) -> String {
        let mut out = String::new();
        let procs = [&self.chopsticks, &self.mock]
            .into_iter()
            .chain(self.miner_procs.iter())
            .chain(self.validator.iter());
        for p in procs {
            out.push_str(&format!(
                "---- {} ({})\n{}\n",
                p.name,
                p.log.display(),
                p.log_tail(n)
            ));
        }
        out
    }

    /// The validator's `GET /status`.
    pub async fn status(&self) -> Result<serde_json::Value, DevnetError> {
        get_json(reqwest::Client::new().get(format!("{}/status", self.validator_url))).await
    }

    /// `GET path` on the validator's Ledger API, btauth/1-signed by `//Eve` (any hotkey may
    /// read).
    pub async fn ledger_get(&self, path: &str) -> Result<serde_json::Value, DevnetError> {
        let eve = pk("//Eve")?;
        let url = reqwest::Url::parse(&format!("{}{path}", self.validator_url))
            .map_err(|e| err(format!("{path}: {e}")))?;
        let headers = crate::auth::signed_headers(
            &eve,
            "GET",
            &url,
            b"",
            Some(&self.validator_hotkey),
            crate::auth::now_ns(),
        );
        get_json(reqwest::Client::new().get(url).headers(headers)).await
    }

    /// Switch `endpoint` of mock subnet `netuid` to output schema `version` (the mock server's
    /// admin route): what a real subnet's upgrade looks like to miners and validators.
    pub async fn set_schema_version(
        &self,
        netuid: u16,
        endpoint: &str,
        version: u32,
    ) -> Result<(), DevnetError> {
        let body =
            serde_json::json!({ "netuid": netuid, "endpoint": endpoint, "version": version });
        get_json(
            reqwest::Client::new()
                .post(format!("{}/admin/schema-version", self.mock_url))
                .json(&body),
        )
        .await
        .map(|_| ())
    }

    /// The mock server's `GET /admin/state`: every subnet's state and true Ledger entry.
    pub async fn mock_state(&self) -> Result<serde_json::Value, DevnetError> {
        get_json(reqwest::Client::new().get(format!("{}/admin/state", self.mock_url))).await
    }

    /// The weights uid `uid` has set on chain, as stored, `(uid, weight)`.
    pub async fn weights_on_chain(&self, uid: u16) -> Result<Vec<(u16, u16)>, DevnetError> {
        let mg = self
            .chain
            .metagraph(self.config.netuid, 0)
            .await
            .map_err(|e| err(format!("metagraph: {e}")))?;
        Ok(mg
            .neurons
            .get(usize::from(uid))
            .map(|n| n.weights.clone())
            .unwrap_or_default())
    }
}

async fn get_json(req: reqwest::RequestBuilder) -> Result<serde_json::Value, DevnetError> {
    let resp = req
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| err(format!("request failed: {e}")))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| err(format!("reading the answer: {e}")))?;
    if !status.is_success() {
        return Err(err(format!("answered {status}: {text}")));
    }
    serde_json::from_str(&text).map_err(|e| err(format!("not JSON ({e}): {text}")))
}

impl Drop for Devnet {
    fn drop(&mut self) {
        // Children die with their `Proc`s (validator and miners first, the chain last).
        self.producer.abort();
        self.validator.take();
        self.miner_procs.clear();
        self.mock.kill();
        self.chopsticks.kill();
    }
}
