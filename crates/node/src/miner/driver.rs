//! The request path through the core: one challenge in, the core's decisions executed. The
//! core plans and decides; this sends every sub-call the core releases at once (so independent
//! DAG branches run in parallel) to the subnets over HTTP ([`crate::subnet_client`]), feeds
//! results back as they arrive, and wakes the core at the times it asks for.

use super::metrics::{NetuidLabels, SubcallLabels};
use super::server::{Answer, MinerServer, lock};
use crate::auth::now_ms;
use orchestra_miner::{LedgerView, SubCall, SubCallFailure};
use orchestra_protocol::messages::Challenge;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

impl MinerServer {
    /// Answer `challenge` by driving the core: `None` when the strategy declines.
    pub async fn answer(&self, challenge: &Challenge) -> anyhow::Result<Option<Answer>> {
        let view = self.view();
        let block = self
            .block
            .load(Ordering::Relaxed)
            .max(challenge.issued_block);
        let mut rng = ChaCha8Rng::from_seed(
            *blake3::keyed_hash(&self.seed, &challenge.challenge_id.0).as_bytes(),
        );
        let mut session = lock(&self.core).start(challenge, &view, block, now_ms(), &mut rng)?;
        let mut calls: JoinSet<(u64, orchestra_miner::SubCallOutcome)> = JoinSet::new();
        loop {
            {
                let mut core = lock(&self.core);
                let now = now_ms();
                while let Some(call) = core.poll_subcall(&mut session, now) {
                    self.spawn_call(&mut calls, &view, call);
                }
            }
            if session.is_finished() {
                break;
            }
            let wake = session.poll_timeout();
            if calls.is_empty() && wake.is_none() {
                break;
            }
            let sleep = async {
                match wake {
                    Some(t) => {
                        tokio::time::sleep(Duration::from_millis(t.saturating_sub(now_ms()))).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                Some(joined) = calls.join_next() => {
                    if let Ok((id, outcome)) = joined {
                        lock(&self.core).on_subcall_result(&mut session, id, outcome, now_ms());
                    }
                }
                () = sleep => {
                    lock(&self.core).handle_timeout(&mut session, now_ms());
                }
            }
        }
        calls.abort_all();
        let response = lock(&self.core).finish(session, &view, block, now_ms())?;
        Ok(response)
    }

    fn spawn_call(
        &self,
        calls: &mut JoinSet<(u64, orchestra_miner::SubCallOutcome)>,
        view: &LedgerView,
        call: SubCall,
    ) {
        let id = call.call_id;
        let netuid = call.netuid;
        let target = self.directory.base(netuid).and_then(|base| {
            view.endpoint(netuid, &call.endpoint)
                .map(|(_, e)| (base, e.method.clone(), e.path.clone()))
        });
        let Some((base, method, path)) = target else {
            self.m
                .subcalls
                .get_or_create(&SubcallLabels {
                    netuid,
                    outcome: "unavailable".into(),
                })
                .inc();
            calls.spawn(async move {
                (
                    id,
                    Err(SubCallFailure::Unavailable(format!(
                        "no URL known for subnet {netuid}"
                    ))),
                )
            });
            return;
        };
        let timeout = Duration::from_millis(call.timeout_at_ms.saturating_sub(now_ms()).max(1));
        let client = self.client.clone();
        let m = self.m.clone();
        calls.spawn(async move {
            let start = Instant::now();
            let out = client
                .subcall(
                    &base,
                    &method,
                    &path,
                    &call.request,
                    call.started_at_ms,
                    timeout,
                )
                .await;
            let label = match &out {
                Ok(reply) => {
                    m.cost.inc_by(reply.cost_rao);
                    "ok"
                }
                Err(SubCallFailure::Timeout) => "timeout",
                Err(SubCallFailure::Unavailable(_)) => "unavailable",
                Err(SubCallFailure::Rejected(_)) => "rejected",
            };
            m.subcalls
                .get_or_create(&SubcallLabels {
                    netuid,
                    outcome: label.into(),
                })
                .inc();
            m.subcall_latency
                .get_or_create(&NetuidLabels { netuid })
                .observe(start.elapsed().as_secs_f64());
            (id, out)
        });
    }
}
