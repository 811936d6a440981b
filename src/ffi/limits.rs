//! The limits a C caller validates against, equal to the Rust crate's (checked at compile time).

/// The largest `lc_upstream.weight`.
pub const LC_MAX_WEIGHT: u32 = 1_000_000;
/// The largest `lc_upstream.tier` (0 is the primary tier).
pub const LC_MAX_TIER: u32 = 255;
/// The largest `lc_upstream.max_requests` (2^28); 0 means unlimited.
pub const LC_MAX_REQUESTS_LIMIT: u32 = 268_435_456;
/// The longest dial address accepted, in bytes.
pub const LC_MAX_ADDRESS_LEN: usize = 1024;
/// The largest `lc_pool_config.max_fails`.
pub const LC_MAX_FAILS_LIMIT: u32 = 1024;

const _: () = assert!(
    LC_MAX_WEIGHT == crate::MAX_WEIGHT
        && LC_MAX_TIER == crate::MAX_TIER
        && LC_MAX_REQUESTS_LIMIT == crate::MAX_REQUESTS_LIMIT
        && LC_MAX_ADDRESS_LEN == crate::MAX_ADDRESS_LEN
        && LC_MAX_FAILS_LIMIT == crate::MAX_FAILS_LIMIT
);
