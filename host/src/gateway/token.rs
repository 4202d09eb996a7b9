//! Comparing a presented secret (the bearer token, a session cookie's MAC) with the expected one in time that does
//! not depend on where they differ.

/// Whether `a` equals `b`, looking at every byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
