// A version and references on fields they do not fit.
#[derive(pgactor::Entity)]
struct Shelf {
    #[pgactor(version)]
    label: String,
    #[pgactor(version)]
    revision: Option<i64>,
    #[pgactor(references = "Stock")]
    name: String,
    #[pgactor(references = "Stock", on_delete = "set_null")]
    stock_id: uuid::Uuid,
    #[pgactor(references = "Stock", on_delete = "delete")]
    other_id: uuid::Uuid,
    #[pgactor(on_delete = "cascade")]
    loose_id: uuid::Uuid,
}

#[derive(pgactor::Entity)]
struct Twice {
    #[pgactor(version)]
    a: i64,
    #[pgactor(version)]
    b: i64,
}

fn main() {}
