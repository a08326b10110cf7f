//! Random ids, made one way: bytes from the system's random source, as lower-case hex. A failure
//! is passed on, never replaced by zeros (an all-zero lock token or temporary name would be the
//! same every time).

/// `n` random bytes as `2n` hex digits.
pub fn hex(n: usize) -> std::io::Result<String> {
    let mut raw = vec![0u8; n];
    getrandom::fill(&mut raw).map_err(|e| std::io::Error::other(format!("the system's random source failed: {e}")))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// `N` random bytes.
pub fn bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut raw = [0u8; N];
    getrandom::fill(&mut raw).map_err(|e| std::io::Error::other(format!("the system's random source failed: {e}")))?;
    Ok(raw)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_ids_differ_and_have_their_length() {
        let (a, b) = (super::hex(16).unwrap(), super::hex(16).unwrap());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert_ne!(super::bytes::<32>().unwrap(), [0u8; 32]);
    }
}
