//! Outbound route selection: which trunk carries a dialled number, with which digits and
//! which caller ID, or why the call is refused and with which SIP status.
//!
//! Order of checks in [`route_outbound`]: extensions are not routed out; emergency numbers skip
//! the bar and the restriction list; then the caller's "no external calls" bar (403), then the
//! restriction list (603), then the longest matching prefix (404 when none).

use super::{Dialled, NumberKind, NumberList, Presentation, MAX_NUMBER_DIGITS};
use std::fmt;

/// Most routes a configuration may hold; real offices have a handful, and selection scans
/// them all per call.
pub const MAX_ROUTES: usize = 1_000;

/// Longest trunk name, in bytes; names are config keys, not prose.
pub const MAX_TRUNK_NAME: usize = 64;

/// One outbound route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Digits the national form must start with; empty matches every number (a default route).
    pub prefix: String,
    /// Digits removed from the front of the national form before sending.
    pub strip: usize,
    /// Digits (or a leading `+`) put in front after stripping, e.g. a carrier code.
    pub prepend: String,
    /// The trunk that carries the call.
    pub trunk: String,
}

/// Why a route table was refused at configuration time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// More than [`MAX_ROUTES`] routes.
    TooManyRoutes,
    /// A prefix that is not ASCII digits or is longer than [`MAX_NUMBER_DIGITS`] (route index).
    BadPrefix(usize),
    /// A prepend that is not digits with an optional leading `+` (route index).
    BadPrepend(usize),
    /// `strip` longer than the prefix: it would remove digits the route did not check.
    StripBeyondPrefix(usize),
    /// An empty or overlong trunk name (route index).
    BadTrunk(usize),
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyRoutes => write!(f, "more than {MAX_ROUTES} routes"),
            Self::BadPrefix(i) => write!(f, "route {i}: prefix must be digits"),
            Self::BadPrepend(i) => write!(f, "route {i}: prepend must be digits or +digits"),
            Self::StripBeyondPrefix(i) => write!(f, "route {i}: strip is longer than the prefix"),
            Self::BadTrunk(i) => write!(f, "route {i}: trunk name empty or too long"),
        }
    }
}

impl std::error::Error for RouteError {}

/// The outbound routing table plus the restriction list (発信規制) it enforces.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    routes: Vec<Route>,
    restrictions: NumberList,
    emergency_trunk: Option<String>,
}

impl Routes {
    /// Validates and builds a table. Order matters only between routes with the same prefix:
    /// the first wins.
    pub fn new(routes: Vec<Route>) -> Result<Self, RouteError> {
        if routes.len() > MAX_ROUTES {
            return Err(RouteError::TooManyRoutes);
        }
        for (i, r) in routes.iter().enumerate() {
            if r.prefix.len() > MAX_NUMBER_DIGITS || !r.prefix.bytes().all(|b| b.is_ascii_digit()) {
                return Err(RouteError::BadPrefix(i));
            }
            let prepend_digits = r.prepend.strip_prefix('+').unwrap_or(&r.prepend);
            if r.prepend.len() > MAX_NUMBER_DIGITS || !prepend_digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(RouteError::BadPrepend(i));
            }
            if r.strip > r.prefix.len() {
                return Err(RouteError::StripBeyondPrefix(i));
            }
            if r.trunk.is_empty() || r.trunk.len() > MAX_TRUNK_NAME {
                return Err(RouteError::BadTrunk(i));
            }
        }
        Ok(Self { routes, ..Self::default() })
    }

    /// Sets the restriction list enforced on every non-emergency call.
    pub fn with_restrictions(mut self, list: NumberList) -> Self {
        self.restrictions = list;
        self
    }

    /// Sets the trunk emergency numbers use when no route prefix matches them, so `110` goes
    /// out even with a table that only routes `0…`.
    pub fn with_emergency_trunk(mut self, trunk: impl Into<String>) -> Self {
        self.emergency_trunk = Some(trunk.into());
        self
    }

    /// The restriction list.
    pub fn restrictions(&self) -> &NumberList {
        &self.restrictions
    }

    /// The longest-prefix route for a national-form number; the first on ties.
    fn select(&self, number: &str) -> Option<&Route> {
        self.routes.iter().filter(|r| number.starts_with(&r.prefix)).fold(None, |best: Option<&Route>, r| {
            match best {
                Some(b) if b.prefix.len() >= r.prefix.len() => Some(b),
                _ => Some(r),
            }
        })
    }
}

/// What routing needs to know about the calling extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerPolicy {
    /// The caller ID this extension presents outside (national form), per extension or DID.
    pub caller_id: String,
    /// Default presentation when no `184`/`186` was dialled.
    pub presentation: Presentation,
    /// 外線発信禁止: this extension may not call outside (emergency numbers excepted).
    pub no_external_calls: bool,
}

/// Where and how an outbound call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDecision {
    /// The trunk to use.
    pub trunk: String,
    /// Digits to send to the trunk, after the route's strip and prepend.
    pub number: String,
    /// Caller ID to send.
    pub caller_id: String,
    /// Whether to present or withhold it.
    pub presentation: Presentation,
    /// An emergency call: the engine must not refuse it for capacity or policy reasons.
    pub emergency: bool,
}

/// Why an outbound call is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The number is an internal extension; the engine should have routed it internally.
    NotExternal,
    /// The caller's "no external calls" flag is set.
    ExternalCallsBarred,
    /// The number is on the restriction list (発信規制) for this caller ID.
    Restricted,
    /// No route covers the number.
    NoRoute,
}

impl RefusalReason {
    /// The SIP status the box answers the phone with.
    pub fn status(self) -> u16 {
        match self {
            Self::ExternalCallsBarred => 403,
            Self::NotExternal | Self::NoRoute => 404,
            Self::Restricted => 603,
        }
    }
}

/// A refused outbound call: the SIP status to answer and the reason (for CDR and the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// SIP status code: 403, 404 or 603.
    pub status: u16,
    /// Why.
    pub reason: RefusalReason,
}

impl From<RefusalReason> for Refusal {
    fn from(reason: RefusalReason) -> Self {
        Self { status: reason.status(), reason }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.reason {
            RefusalReason::NotExternal => "internal number",
            RefusalReason::ExternalCallsBarred => "external calls barred for this extension",
            RefusalReason::Restricted => "number on the outbound restriction list (発信規制)",
            RefusalReason::NoRoute => "no outbound route",
        };
        write!(f, "{} {why}", self.status)
    }
}

impl std::error::Error for Refusal {}

/// Routes `dialled` for `caller`.
///
/// Emergency numbers go out even when the caller is barred or the restriction list names them,
/// and use the emergency trunk when no prefix matches. Their presentation follows a dialled
/// `184`/`186` only: an extension's default withholding does not apply to `110`/`118`/`119`.
pub fn route_outbound(
    routes: &Routes,
    dialled: &Dialled,
    caller: &CallerPolicy,
) -> Result<RouteDecision, Refusal> {
    let emergency = dialled.is_emergency();
    if dialled.kind == NumberKind::Extension {
        return Err(RefusalReason::NotExternal.into());
    }
    if !emergency {
        if caller.no_external_calls {
            return Err(RefusalReason::ExternalCallsBarred.into());
        }
        if !routes.restrictions.check_outbound(dialled, &caller.caller_id) {
            return Err(RefusalReason::Restricted.into());
        }
    }
    let (trunk, number) = match routes.select(&dialled.number) {
        Some(r) => {
            let kept = dialled.number.get(r.strip..).unwrap_or_default();
            (r.trunk.clone(), format!("{}{kept}", r.prepend))
        }
        None => match routes.emergency_trunk.as_ref().filter(|_| emergency) {
            Some(t) => (t.clone(), dialled.number.clone()),
            None => return Err(RefusalReason::NoRoute.into()),
        },
    };
    let presentation = match (dialled.presentation, emergency) {
        (Some(p), _) => p,
        (None, true) => Presentation::Present,
        (None, false) => caller.presentation,
    };
    Ok(RouteDecision { trunk, number, caller_id: caller.caller_id.clone(), presentation, emergency })
}

#[cfg(test)]
mod tests {
    use super::super::{normalise, ListEntry};
    use super::*;

    fn route(prefix: &str, strip: usize, prepend: &str, trunk: &str) -> Route {
        Route { prefix: prefix.into(), strip, prepend: prepend.into(), trunk: trunk.into() }
    }

    fn table() -> Routes {
        let routes = Routes::new(vec![
            route("0", 0, "", "ntt"),
            route("090", 0, "", "mobile-gw"),
            route("010", 3, "+", "intl"),
            route("11", 0, "", "ntt"),
        ]);
        match routes {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    fn caller() -> CallerPolicy {
        CallerPolicy {
            caller_id: "0312345678".into(),
            presentation: Presentation::Present,
            no_external_calls: false,
        }
    }

    fn barred() -> CallerPolicy {
        CallerPolicy { no_external_calls: true, ..caller() }
    }

    fn go(routes: &Routes, dialled: &str, caller: &CallerPolicy) -> Result<RouteDecision, Refusal> {
        match normalise(dialled) {
            Ok(d) => route_outbound(routes, &d, caller),
            Err(e) => panic!("{dialled:?}: {e}"),
        }
    }

    fn status(r: Result<RouteDecision, Refusal>) -> u16 {
        r.map_or_else(|e| e.status, |_| 200)
    }

    // Tests for selection.

    #[test]
    fn the_longest_matching_prefix_wins() {
        let t = table();
        assert_eq!(go(&t, "090-1234-5678", &caller()).map(|d| d.trunk), Ok("mobile-gw".into()));
        assert_eq!(go(&t, "03-1234-5678", &caller()).map(|d| d.trunk), Ok("ntt".into()));
    }

    #[test]
    fn the_first_route_wins_between_equal_prefixes() {
        let t = Routes::new(vec![route("03", 0, "", "a"), route("03", 0, "", "b")]);
        let t = t.unwrap_or_default();
        assert_eq!(go(&t, "0312345678", &caller()).map(|d| d.trunk), Ok("a".into()));
    }

    #[test]
    fn strip_and_prepend_rewrite_the_sent_digits() {
        let t = table();
        assert_eq!(go(&t, "+44 20 7946 0958", &caller()).map(|d| d.number), Ok("+442079460958".into()));
        let carrier = Routes::new(vec![route("0", 0, "0033", "myline")]).unwrap_or_default();
        assert_eq!(go(&carrier, "0312345678", &caller()).map(|d| d.number), Ok("00330312345678".into()));
    }

    #[test]
    fn numbers_without_a_route_get_404() {
        let t = Routes::new(vec![route("090", 0, "", "m")]).unwrap_or_default();
        let r = go(&t, "0312345678", &caller());
        assert_eq!(r.map_err(|e| e.reason), Err(RefusalReason::NoRoute));
        assert_eq!(status(go(&t, "0312345678", &caller())), 404);
    }

    #[test]
    fn extensions_are_not_routed_out() {
        assert_eq!(go(&table(), "201", &caller()).map_err(|e| e.reason), Err(RefusalReason::NotExternal));
    }

    #[test]
    fn bad_route_tables_are_refused_with_the_culprit() {
        assert_eq!(Routes::new(vec![route("0x", 0, "", "t")]).map(|_| ()), Err(RouteError::BadPrefix(0)));
        assert_eq!(
            Routes::new(vec![route("0", 0, "", "t"), route("0", 0, "1+", "t")]).map(|_| ()),
            Err(RouteError::BadPrepend(1))
        );
        assert_eq!(
            Routes::new(vec![route("0", 2, "", "t")]).map(|_| ()),
            Err(RouteError::StripBeyondPrefix(0))
        );
        assert_eq!(Routes::new(vec![route("0", 0, "", "")]).map(|_| ()), Err(RouteError::BadTrunk(0)));
        let many = vec![route("0", 0, "", "t"); MAX_ROUTES + 1];
        assert_eq!(Routes::new(many).map(|_| ()), Err(RouteError::TooManyRoutes));
    }

    // Tests for bars and restrictions.

    #[test]
    fn barred_extensions_get_403_for_external_numbers() {
        let r = go(&table(), "03-1234-5678", &barred());
        assert_eq!(r.map_err(|e| (e.status, e.reason)), Err((403, RefusalReason::ExternalCallsBarred)));
    }

    #[test]
    fn restricted_numbers_get_603() {
        let mut list = NumberList::new();
        let e = ListEntry::parse("0120*", None, "").map_err(|e| e.to_string());
        assert_eq!(e.clone().map(|e| list.insert(e)), Ok(Ok(())));
        let t = table().with_restrictions(list);
        let r = go(&t, "0120-123-456", &caller());
        assert_eq!(r.map_err(|e| (e.status, e.reason)), Err((603, RefusalReason::Restricted)));
        assert_eq!(status(go(&t, "03-1234-5678", &caller())), 200);
        assert_eq!(Refusal::from(RefusalReason::Restricted).to_string().get(..3), Some("603"));
    }

    #[test]
    fn emergency_numbers_go_out_even_when_barred_and_restricted() {
        let mut list = NumberList::new();
        if let Ok(e) = ListEntry::parse("11*", None, "") {
            assert_eq!(list.insert(e), Ok(()));
        }
        let t = table().with_restrictions(list);
        for n in ["110", "118", "119"] {
            let d = go(&t, n, &barred());
            assert_eq!(d.as_ref().map(|d| d.emergency), Ok(true), "{n}");
            assert_eq!(d.map(|d| d.number), Ok(n.to_owned()));
        }
    }

    #[test]
    fn emergency_numbers_use_the_emergency_trunk_when_no_prefix_matches() {
        let t = Routes::new(vec![route("0", 0, "", "ntt")]).unwrap_or_default();
        assert_eq!(status(go(&t, "119", &barred())), 404);
        let t = t.with_emergency_trunk("ntt-analog");
        assert_eq!(go(&t, "119", &barred()).map(|d| d.trunk), Ok("ntt-analog".into()));
        // The emergency trunk is for emergency numbers only.
        assert_eq!(status(go(&Routes::default().with_emergency_trunk("x"), "0312345678", &caller())), 404);
    }

    // Tests for presentation.

    #[test]
    fn a_dialled_184_or_186_overrides_the_extension_default() {
        let withholding = CallerPolicy { presentation: Presentation::Withhold, ..caller() };
        let t = table();
        let p = |s, c: &CallerPolicy| go(&t, s, c).map(|d| d.presentation);
        assert_eq!(p("0312345678", &caller()), Ok(Presentation::Present));
        assert_eq!(p("0312345678", &withholding), Ok(Presentation::Withhold));
        assert_eq!(p("184 0312345678", &caller()), Ok(Presentation::Withhold));
        assert_eq!(p("186 0312345678", &withholding), Ok(Presentation::Present));
    }

    #[test]
    fn emergency_calls_present_the_caller_id_unless_184_was_dialled() {
        let withholding = CallerPolicy { presentation: Presentation::Withhold, ..caller() };
        let t = table();
        assert_eq!(go(&t, "110", &withholding).map(|d| d.presentation), Ok(Presentation::Present));
        assert_eq!(go(&t, "184110", &caller()).map(|d| d.presentation), Ok(Presentation::Withhold));
    }
}
