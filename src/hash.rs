//! The two small unkeyed hashes of the crate, for where no keyed or cryptographic hash is
//! needed.

/// 64-bit FNV-1a. Zone keys are hashed with it, in every process that maps the zone: part of
/// the zone's layout (src/zone/slots.rs), so it never changes within a layout version.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The splitmix64 generator's step from state `z`: its output for the next state,
/// `z + 0x9e37_79b9_7f4a_7c15`. Also a good 64-bit mixer.
pub(crate) fn splitmix64(z: u64) -> u64 {
    let mut z = z.wrapping_add(SPLITMIX64_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// splitmix64's increment of its state.
pub(crate) const SPLITMIX64_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_gives_the_reference_sequence() {
        // The first outputs of splitmix64 seeded with 0 (Vigna's reference implementation).
        let mut state = 0u64;
        let mut next = || {
            let out = splitmix64(state);
            state = state.wrapping_add(SPLITMIX64_GAMMA);
            out
        };
        assert_eq!([next(), next(), next()], [0xe220_a839_7b1d_cdaf, 0x6e78_9e6a_a1b9_65f4, 0x06c4_5d18_8009_454f]);
    }
}
