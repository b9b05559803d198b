use super::hex;

#[test]
fn ids_are_fixed_width_lowercase_hex() {
    assert_eq!(hex(0xab, 4), "00ab");
    assert_eq!(hex(0x0af7_6519_16cd_43dd, 16), "0af7651916cd43dd");
    assert_eq!(hex(u128::MAX, 32), "f".repeat(32));
    assert_eq!(hex(1, 32), format!("{:032x}", 1));
}
