//! Live reconfiguration (issue 7: settings edited in the web admin take effect without a
//! restart).
//!
//! [`Engine::reconfigure`] swaps the tables derived from the configuration and leaves every call
//! in progress alone: a call keeps the plan, IVR session or trunk leg it started with, and the
//! next call sees the new tables. What cannot change on a running box (the SIP port, the
//! advertised address, the RTP range, the realm) is kept and reported as needing a restart.
//!
//! Per table:
//! - extensions and credentials: replaced; a deleted extension's registrations are dropped, and
//!   so are those of an extension whose password changed (the phone must authenticate again);
//! - dial plan (ring groups, forwards, DND, PINs): replaced; the phones' own overrides stay;
//! - trunks: unchanged ones keep their registration; changed ones unregister and register
//!   anew, deleted ones unregister, new ones register;
//! - DIDs, time rules, routes, block/restrict lists: replaced (console list imports stay);
//! - IVRs, supervisor roles, park, media settings, conference rooms: replaced;
//! - queues and members (the ACD): rebuilt when no caller is in a queue, logged-in agents
//!   logged in again; while callers are queued the old queues stay and the report says so
//!   (the caller saves again later or restarts).

use super::{Engine, EngineConfig};
use crate::config::ExtensionConfig;
use crate::sip::Peer;
use std::collections::HashMap;
use std::time::Instant;

/// What [`Engine::reconfigure`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconfigureReport {
    /// Settings changed that only a restart applies (names like `sip.port`).
    pub restart_required: Vec<&'static str>,
    /// Registrations dropped (deleted extensions, changed passwords).
    pub registrations_dropped: usize,
    /// Trunks that (re-)register because they are new or changed.
    pub trunks_registering: Vec<String>,
    /// Trunks removed (unregistered).
    pub trunks_removed: Vec<String>,
    /// The queue settings changed but callers were queued: the old queues stay.
    pub queues_deferred: bool,
}

impl Engine {
    /// Applies a new configuration to the running engine (module doc: what changes how).
    /// `cfg`'s `secret`, `wall_anchor` and `first_call_id` are ignored: the running values stay.
    /// Drain [`Engine::poll_output`] afterwards (trunk REGISTERs, queue actions).
    pub fn reconfigure(
        &mut self,
        now: Instant,
        cfg: EngineConfig,
        extensions: &[ExtensionConfig],
    ) -> ReconfigureReport {
        let mut report = ReconfigureReport::default();
        let old = &self.cfg;
        let fixed: [(&'static str, bool); 4] = [
            ("sip.realm", old.realm != cfg.realm),
            ("sip.port", old.sip_port != cfg.sip_port),
            ("sip.advertise", old.advertise != cfg.advertise),
            ("rtp.ports", old.rtp_ports != cfg.rtp_ports),
        ];
        report.restart_required = fixed.iter().filter(|(_, changed)| *changed).map(|(n, _)| *n).collect();

        let new_ext: HashMap<String, ExtensionConfig> =
            extensions.iter().map(|e| (e.number.clone(), e.clone())).collect();
        for (number, e) in &self.extensions {
            let keeps = new_ext.get(number).is_some_and(|n| n.password == e.password);
            if !keeps {
                report.registrations_dropped += self.registrar.remove(number);
            }
        }
        self.extensions = new_ext;

        self.dialplan.reconfigure(&cfg.dialplan);
        self.trunk_calls.reconfigure(&cfg.trunk_calls);
        self.reconfigure_trunks(now, &cfg, &mut report);

        let callcenter_changed = self.cfg.callcenter != cfg.callcenter
            || self.cfg.trunk_calls.time_rules.offset() != cfg.trunk_calls.time_rules.offset();
        let keep_callcenter = callcenter_changed && {
            let acd_cfg = cfg.callcenter.acd_config(cfg.trunk_calls.time_rules.offset());
            let unix_ms = self.wall_ms(now);
            !self.queue.reconfigure(acd_cfg, now, unix_ms)
        };
        report.queues_deferred = keep_callcenter;

        let old = std::mem::replace(&mut self.cfg, cfg);
        self.cfg.realm = old.realm;
        self.cfg.sip_port = old.sip_port;
        self.cfg.advertise = old.advertise;
        self.cfg.rtp_ports = old.rtp_ports;
        self.cfg.secret = old.secret;
        self.cfg.wall_anchor = old.wall_anchor;
        self.cfg.first_call_id = old.first_call_id;
        if keep_callcenter {
            // The ACD runs the old queues: the lookups by number must agree with it.
            self.cfg.callcenter = old.callcenter;
        }
        self.queue_drain(now);
        self.drain_trunks();
        log::info!("reconfigured: {report:?}");
        report
    }

    fn reconfigure_trunks(&mut self, now: Instant, cfg: &EngineConfig, report: &mut ReconfigureReport) {
        let mut kept = Vec::with_capacity(cfg.trunks.len());
        let mut sends: Vec<(Peer, Vec<u8>)> = Vec::new();
        for mut t in std::mem::take(&mut self.trunks) {
            let same = cfg.trunks.iter().any(|c| c == t.config());
            if same {
                kept.push(t);
                continue;
            }
            t.unregister(now);
            let transport = t.config().transport;
            while let Some((addr, data)) = t.poll_transmit() {
                sends.push((Peer { transport, addr }, data));
            }
            if !cfg.trunks.iter().any(|c| c.name == t.config().name) {
                report.trunks_removed.push(t.config().name.clone());
            }
        }
        for c in &cfg.trunks {
            if kept.iter().any(|t| t.config() == c) {
                continue;
            }
            if let Some(mut trunk) = Self::build_trunk(&self.cfg, c) {
                trunk.start(now);
                report.trunks_registering.push(c.name.clone());
                kept.push(trunk);
            }
        }
        self.trunks = kept;
        for (peer, data) in sends {
            self.transmit(peer, data);
        }
    }
}
