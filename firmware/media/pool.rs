//! The RTP port pool (placeholder; filled in by the media work).
