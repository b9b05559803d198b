//! Compile errors of the attribute, pinned with trybuild. The runtime behaviour is tested in
//! apitally-actix/tests/macros.rs.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
}
