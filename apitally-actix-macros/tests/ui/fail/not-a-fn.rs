#[apitally_actix_macros::consumer(id)]
struct Handler;

fn main() {}
