#[apitally_actix_macros::consumer(id, attributes(plan = id, plan = id))]
async fn duplicate(id: String) -> String {
    id
}

#[apitally_actix_macros::consumer(id, attributes(id))]
async fn not_assigned(id: String) -> String {
    id
}

fn main() {}
