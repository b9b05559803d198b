#[apitally_actix_macros::consumer(id, group = id, group = id)]
async fn handler(id: String) -> String {
    id
}

fn main() {}
