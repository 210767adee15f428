//! SDP parsing and rendering (placeholder; filled in by the media work).
