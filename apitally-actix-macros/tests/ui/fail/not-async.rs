#[apitally_actix_macros::consumer(id)]
fn handler(id: String) -> String {
    id
}

fn main() {}
