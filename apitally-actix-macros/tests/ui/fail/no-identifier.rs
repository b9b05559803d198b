#[apitally_actix_macros::consumer()]
async fn handler() {}

#[apitally_actix_macros::consumer(name = user)]
async fn named(user: String) -> String {
    user
}

fn main() {}
