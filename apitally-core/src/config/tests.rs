use super::*;

#[test]
fn openapi_paths_with_summaries() {
    let doc = serde_json::json!({"paths": {
        "/items": {"get": {"summary": "List"}, "post": {"description": "Create"}, "parameters": []},
        "/items/{id}": {"delete": {}}
    }});
    let items = paths_from_openapi(&doc);
    assert_eq!(
        items,
        vec![
            PathItem::new("GET", "/items").summary("List"),
            PathItem::new("POST", "/items").description("Create"),
            PathItem::new("DELETE", "/items/{id}"),
        ]
    );
    assert!(paths_from_openapi(&serde_json::json!({})).is_empty());
}
