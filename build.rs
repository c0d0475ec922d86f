//! Tells the browser tests whether they have a sync server: `npm test` starts one and sets
//! FERROSYNC_TEST_SERVER while building them. Without it (a plain `wasm-pack test`), the tests
//! that need one are reported as ignored instead of failing.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(ferrosync_test_server)");
    println!("cargo::rerun-if-env-changed=FERROSYNC_TEST_SERVER");
    if std::env::var_os("FERROSYNC_TEST_SERVER").is_some() {
        println!("cargo::rustc-cfg=ferrosync_test_server");
    }
}
