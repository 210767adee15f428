//! SIP. Placeholder while the wire layer is written.
