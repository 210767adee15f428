//! The RTP/RTCP relay driver (placeholder; filled in by the media work).
