//! The SIP parser on arbitrary bytes: it must never panic, and a failure that carries a reply
//! context must name a status the box can send.
#![no_main]

use hakoden::sip::message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match message::parse(data) {
        Ok(message::Message::Request(r)) => {
            // Accessors the engine calls on every request must not panic either.
            let _ = r.contacts();
            let _ = r.expires();
            let _ = r.common.top_via().branch();
            let _ = r.common.content_type();
            let _ = r.uri.user_unescaped();
        }
        Ok(message::Message::Response(r)) => {
            assert!((100..=699).contains(&r.code));
            let _ = r.common.top_via();
        }
        Err(f) => assert!(matches!(f.error.status(), 400 | 505 | 513)),
    }
});
