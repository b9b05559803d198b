#[apitally_actix_macros::consumer(id, nmae = id)]
async fn handler(id: String) -> String {
    id
}

fn main() {}
