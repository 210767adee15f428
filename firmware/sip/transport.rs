//! SIP socket drivers (written with the engine).
